"""Load scenarios: C (parallel CPU-bound hooks), E (start and memory), F (soak)."""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psutil

from .. import external, hooks
from ..baselines import InProcess, PipeFloor, Pool, child_start_seconds
from ..placement import Placement
from ..sandbox import Sandbox, build_rigger
from ..stats import Budget, Summary, percentile, perf_ns
from .common import (
    Check,
    Row,
    ScenarioResult,
    Settings,
    event_contender,
    measure,
    ratio_check,
)
from .latency import FLOOR, IN_PROCESS, SANDBOX, _skip_riggerlib, small_message

CPU_SECONDS = 0.2
THREADED = "rigger_sandbox threaded"
SEQUENTIAL = "rigger_sandbox sequential"
MiB = 2**20


def scenario_c(settings: Settings) -> ScenarioResult:
    """Two CPU-bound hooks (0.2 s CPU each): threaded against sequential."""
    result = ScenarioResult("C", "two CPU-bound hooks, 0.2 s CPU each")
    method = settings.start_method
    kwargs = {"cpu_seconds": CPU_SECONDS}
    plugins = ["bench_cpu", "bench_cpu"]

    def two_processes(outcome: Any) -> bool:
        used = [v for k, v in outcome[1].items() if k.startswith("cpu_")]
        return len(used) >= 2 and min(used) >= CPU_SECONDS

    def answered(outcome: Any) -> bool:
        return isinstance(outcome, tuple) and len(outcome) == 2

    rl_skip = _skip_riggerlib(settings)
    contenders = [
        event_contender(
            THREADED,
            lambda: Sandbox(plugins, True, method, hooks.CPU_EVENT),
            kwargs,
            two_processes,
        ),
        event_contender(
            SEQUENTIAL,
            lambda: Sandbox(plugins, False, method, hooks.CPU_EVENT),
            kwargs,
            two_processes,
        ),
        event_contender(
            "ProcessPoolExecutor (2 workers)",
            lambda: Pool(2, "cpu_hook", method),
            kwargs,
            answered,
        ),
        event_contender(
            "riggerlib threaded",
            lambda: external.Riggerlib(2, True, hooks.cpu_hook, hooks.CPU_EVENT),
            kwargs,
            answered,
            rl_skip,
        ),
        event_contender(
            "riggerlib",
            lambda: external.Riggerlib(2, False, hooks.cpu_hook, hooks.CPU_EVENT),
            kwargs,
            answered,
            rl_skip,
        ),
    ]
    budget = Budget(settings.slow_repeats, 0.0, 1, 1, 1)
    measure(result, contenders, budget, quiet_gc=False)
    ratio_check(result, "threaded speedup", SEQUENTIAL, THREADED, ">=", 1.8)
    result.notes.append("placement free: both plugin processes need a CPU each")
    result.notes.append(
        f"load average after C: {', '.join(f'{v:.2f}' for v in os.getloadavg())} "
        "(other work on the 2 cores lowers the speedup)"
    )
    return result


def _tree_memory(pid: int) -> tuple[int, int]:
    """USS and RSS in bytes of a process and all its descendants."""
    process = psutil.Process(pid)
    uss = rss = 0
    for member in [process, *process.children(recursive=True)]:
        info = member.memory_full_info()
        uss += info.uss
        rss += info.rss
    return uss, rss


def _concurrent_child_starts(start_method: str, count: int) -> float:
    """Seconds until ``count`` children started at once have all signalled."""
    context: Any = multiprocessing.get_context(start_method)
    pipes = [context.Pipe(duplex=False) for _ in range(count)]
    processes = [context.Process(target=_ready, args=(writer,)) for _, writer in pipes]
    try:
        start = time.perf_counter()
        for process in processes:
            process.start()
        for reader, _ in pipes:
            if not reader.poll(60):
                raise RuntimeError(f"a {start_method} child did not signal in 60 s")
            reader.recv_bytes()
        return time.perf_counter() - start
    finally:
        for _, writer in pipes:
            writer.close()
        for process in processes:
            if process.pid is not None:
                process.join(5)
                if process.exitcode is None:
                    process.kill()
                    process.join()
        for reader, _ in pipes:
            reader.close()


def _ready(writer: Any) -> None:
    writer.send_bytes(b"!")


def scenario_e(settings: Settings) -> ScenarioResult:
    """start() of 8 plugins until all are initialized; idle memory per plugin."""
    result = ScenarioResult("E", "start() of 8 plugins; idle memory per plugin")
    method = settings.start_method
    plugins = ["bench_small"] * 8
    starts: list[int] = []
    stops: list[int] = []
    one_child: list[int] = []
    eight_children: list[int] = []
    uss: list[int] = []
    rss: list[int] = []
    states: set[str] = set()

    def one_round(record: bool) -> None:
        rig = build_rigger(plugins, True, method, hooks.SMALL_EVENT)
        began = perf_ns()
        rig.start()
        started = perf_ns() - began
        try:
            pids = rig.plugin_pids()
            states.update(s["state"] for s in rig.stats().values())
            if record:
                for pid in pids.values():
                    if pid is None:
                        raise AssertionError(f"a plugin has no pid: {pids}")
                    plugin_uss, plugin_rss = _tree_memory(pid)
                    uss.append(plugin_uss)
                    rss.append(plugin_rss)
        finally:
            began = perf_ns()
            rig.shutdown()
            stopped = perf_ns() - began
        if record:
            starts.append(started)
            stops.append(stopped)
            one_child.append(int(child_start_seconds(method) * 1e9))
            eight_children.append(int(_concurrent_child_starts(method, 8) * 1e9))
        else:
            result.rows.append(
                Row("first start() in this run", value=started / 1e6, unit="ms")
            )

    try:
        one_round(record=False)
        child_start_seconds(method)
        for _ in range(settings.slow_repeats):
            one_round(record=True)
    except Exception:
        result.fail("start/stop round")
    result.notes.append("placement free: start-up is measured as users see it")
    if states - {"running"}:
        result.errors.append(f"plugins not running right after start(): {states}")
    if starts:
        result.rows += [
            Row("rigger_sandbox start() of 8 plugins", Summary.of([starts])),
            Row(f"one {method} child start", Summary.of([one_child])),
            Row(f"8 {method} children started at once", Summary.of([eight_children])),
            Row("rigger_sandbox shutdown() of 8 plugins", Summary.of([stops])),
            Row(
                "idle USS per plugin (median)",
                value=statistics.median(uss) / MiB,
                unit="MiB",
            ),
            Row("idle USS per plugin (max)", value=max(uss) / MiB, unit="MiB"),
            Row(
                "idle RSS per plugin (median)",
                value=statistics.median(rss) / MiB,
                unit="MiB",
            ),
        ]
        ratio_check(
            result,
            "start of 8 vs one child start",
            "rigger_sandbox start() of 8 plugins",
            f"one {method} child start",
            "<=",
            3,
        )
        worst = max(uss) / MiB
        result.checks.append(
            Check("idle USS per plugin (max)", worst, "<= 10 MiB", worst <= 10, "MiB")
        )
    return result


def _rss_and_fds() -> tuple[int, int]:
    me = psutil.Process()
    return me.memory_info().rss, me.num_fds()


def scenario_f(settings: Settings) -> ScenarioResult:
    """Many events through 4 plugins, threaded: rate, tail, and leaks."""
    count = settings.events
    result = ScenarioResult("F", f"{count:,} events through 4 plugins, threaded")
    kwargs = {"item": hooks.SMALL_ITEM}
    # Free placement: F's targets compare the sandbox with itself, and pinned
    # processes could not dodge other work on the machine, which would put
    # the neighbours' time slices into the tail.
    with Placement("free") as placed:
        try:
            sandbox = Sandbox(
                ["bench_small"] * 4,
                True,
                settings.start_method,
                hooks.SMALL_EVENT,
                [hooks.pre_count],
            )
        except Exception:
            result.fail(f"{SANDBOX}: could not start")
            return result
        try:
            placed.settle()
            _soak(result, count, lambda: sandbox.process_hook(**kwargs), SANDBOX, True)
        except Exception:
            result.fail(f"{SANDBOX}: soak")
        finally:
            sandbox.close()
        _soak_baselines(result, placed, min(count, 20_000))
    result.notes.append("placement free: the tail includes what users would see")
    return result


def _soak(
    result: ScenarioResult,
    count: int,
    call: Callable[[], Any],
    name: str,
    checked: bool,
) -> None:
    """Fire ``count`` events one after another, timing each; gc stays on."""
    for _ in range(min(1000, max(10, count // 10))):
        call()
    rss_before, fds_before = _rss_and_fds()
    samples = [0] * count
    checkpoints: list[int] = []
    step = max(1, count // 10)
    began = perf_ns()
    for index in range(count):
        start = perf_ns()
        call()
        samples[index] = perf_ns() - start
        if index % step == step - 1:
            checkpoints.append(psutil.Process().memory_info().rss)
    elapsed = (perf_ns() - began) / 1e9
    rss_after, fds_after = _rss_and_fds()

    ordered = sorted(samples)
    p50 = percentile(ordered, 0.5) / 1000
    p99 = percentile(ordered, 0.99) / 1000
    result.rows.append(Row(name, Summary.of([samples])))
    result.rows.append(
        Row(f"{name}: events per second", value=count / elapsed, unit="ev/s")
    )
    if not checked:
        return
    growth = (rss_after - rss_before) / MiB
    result.rows += [
        Row(f"{name}: parent RSS before", value=rss_before / MiB, unit="MiB"),
        Row(f"{name}: parent RSS after", value=rss_after / MiB, unit="MiB"),
        Row(
            f"{name}: parent open fds before/after",
            value=fds_after,
            unit="fds",
            note=f"before {fds_before}",
        ),
    ]
    result.extra["rss_checkpoints_mib"] = [round(v / MiB, 2) for v in checkpoints]
    result.checks += [
        Check(
            "p99 / p50",
            p99 / p50,
            "<= 3x",
            p99 / p50 <= 3,
            f"p50 {p50:.1f} us, p99 {p99:.1f} us",
        ),
        Check(
            "parent RSS growth",
            growth,
            "<= 4 MiB (flat)",
            growth <= 4,
            f"{growth * MiB / count:.1f} bytes per event",
        ),
        Check(
            "parent open fds growth",
            float(fds_after - fds_before),
            "== 0",
            fds_after == fds_before,
            f"{fds_before} -> {fds_after}",
        ),
    ]


def _soak_baselines(result: ScenarioResult, placed: Placement, count: int) -> None:
    """The same loop through a 4-child floor and in process, for context."""
    message = small_message()
    floor: PipeFloor | None = None
    try:
        floor = PipeFloor(4, message)
        placed.settle()
        _soak(result, count, floor.call, f"{FLOOR}, 4 children", False)
    except Exception:
        result.fail(f"{FLOOR}: soak")
    finally:
        if floor is not None:
            floor.close()
    rig = InProcess([hooks.small_hook] * 4, [hooks.pre_count])
    _soak(
        result,
        count,
        lambda: rig.process_hook(item=hooks.SMALL_ITEM),
        f"{IN_PROCESS}, 4 hooks",
        False,
    )
    result.notes.append(f"baselines ran {count:,} events each")
