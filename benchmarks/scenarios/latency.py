"""Latency scenarios: A (one small event), B (fan-out), D (a 10 MiB argument)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import external, hooks
from ..baselines import InProcess, PipeFloor, Pool, RawPipe
from ..sandbox import Sandbox
from ..stats import Budget
from .common import (
    Contender,
    ScenarioResult,
    Settings,
    event_contender,
    measure,
    ratio_check,
)

SANDBOX = "rigger_sandbox"
FLOOR = "floor (pipe echo)"
IN_PROCESS = "in-process call"
POOL = "ProcessPoolExecutor"
RIGGERLIB = "riggerlib"
RIGGERLIB_THREADED = "riggerlib threaded"
RAY = "ray actor"
RAW_PIPE = "raw pipe transfer"

BLOB_BYTES = 10 * 2**20
SMALL_KWARGS = {"item": hooks.SMALL_ITEM}


def small_message() -> tuple[str, str, dict[str, Any]]:
    """What the floor echoes: the call message for the small hook."""
    return ("call", hooks.SMALL_EVENT, {"item": hooks.SMALL_ITEM, "count": 4})


def _small_ok(count: int) -> Callable[[Any], bool]:
    expected = hooks.expected_small_local()

    def check(outcome: Any) -> bool:
        local = outcome[0]
        return all(local.get(k) == v for k, v in expected.items())

    return check


def _skip_riggerlib(settings: Settings) -> str | None:
    if not settings.with_riggerlib:
        return "disabled with --skip riggerlib"
    return external.riggerlib_unavailable()


def _skip_ray(settings: Settings) -> str | None:
    if not settings.with_ray:
        return "disabled with --skip ray"
    return external.ray_unavailable()


def small_event_contenders(
    settings: Settings, count: int, threaded: bool
) -> list[Contender]:
    """Every contender for one small event through ``count`` plugins."""
    method = settings.start_method
    pre = [hooks.pre_count]
    ok = _small_ok(count)
    message = small_message()
    plugins = ["bench_small"] * count
    rl_skip = _skip_riggerlib(settings)

    def floor_open() -> tuple[Callable[[], Any], Callable[[], None]]:
        floor = PipeFloor(count, message)
        return floor.call, floor.close

    return [
        event_contender(
            SANDBOX,
            lambda: Sandbox(plugins, threaded, method, hooks.SMALL_EVENT, pre),
            SMALL_KWARGS,
            ok,
        ),
        Contender(FLOOR, floor_open, lambda replies: replies == [message] * count),
        event_contender(
            IN_PROCESS,
            lambda: InProcess([hooks.small_hook] * count, pre),
            SMALL_KWARGS,
            ok,
        ),
        event_contender(
            POOL, lambda: Pool(count, "small_hook", method, pre), SMALL_KWARGS, ok
        ),
        event_contender(
            RIGGERLIB,
            lambda: external.Riggerlib(
                count, False, hooks.small_hook, hooks.SMALL_EVENT, pre
            ),
            SMALL_KWARGS,
            ok,
            rl_skip,
        ),
        event_contender(
            RIGGERLIB_THREADED,
            lambda: external.Riggerlib(
                count, True, hooks.small_hook, hooks.SMALL_EVENT, pre
            ),
            SMALL_KWARGS,
            ok,
            rl_skip,
        ),
        event_contender(
            RAY,
            lambda: external.RayActors(count, "small_hook", pre),
            SMALL_KWARGS,
            ok,
            _skip_ray(settings),
        ),
    ]


def scenario_a(settings: Settings) -> ScenarioResult:
    """One plugin, one small event: pre-callback, hook in the child, merge."""
    result = ScenarioResult("A", "one plugin, one small event")
    contenders = small_event_contenders(settings, 1, threaded=False)
    measure(result, contenders, settings.latency, placement=settings.placement)
    ratio_check(result, "median vs floor", SANDBOX, FLOOR, "<=", 1.5, "aim <= 1.25x")
    ratio_check(result, "ProcessPoolExecutor vs sandbox", POOL, SANDBOX, ">=", 10)
    ratio_check(
        result, "riggerlib threaded vs sandbox", RIGGERLIB_THREADED, SANDBOX, ">=", 100
    )
    return result


def scenario_b(settings: Settings) -> ScenarioResult:
    """Fan-out: N plugins threaded, one small event, for each N of the sweep.

    The table shows N = 8 (the target); the other sizes feed the plot.
    """
    result = ScenarioResult("B", "fan-out: 8 plugins threaded, one small event")
    sweep: dict[str, dict[int, float]] = {}
    for count in sorted(set(settings.sweep_sizes) | {8}):
        part = ScenarioResult("B", f"{count} plugins")
        measure(
            part,
            small_event_contenders(settings, count, True),
            settings.latency,
            placement=settings.placement,
        )
        for row in part.rows:
            if row.summary is not None:
                sweep.setdefault(row.name, {})[count] = row.summary.median_us
        result.errors.extend(f"[{count} plugins] {e}" for e in part.errors)
        if count == 8:
            result.rows = part.rows
            result.notes.extend(part.notes)
    result.extra["sweep_median_us"] = sweep
    ratio_check(result, "8 plugins vs 8-child floor", SANDBOX, FLOOR, "<=", 1.5)
    return result


def _blob() -> bytes:
    return bytes(range(256)) * (BLOB_BYTES // 256)


def scenario_d(settings: Settings) -> ScenarioResult:
    """A 10 MiB bytes argument: to a hook that takes it, and past one that does not."""
    result = ScenarioResult("D", "a 10 MiB bytes argument")
    method = settings.start_method
    blob = _blob()
    blob_kwargs = {"blob": blob}

    def blob_ok(outcome: Any) -> bool:
        return outcome[0].get("blob_len") == BLOB_BYTES

    def raw_open() -> tuple[Callable[[], Any], Callable[[], None]]:
        pipe = RawPipe(blob)
        return pipe.call, pipe.close

    # Each call moves 10 MiB: fewer calls, but never fewer than five per repeat.
    lat = settings.latency
    big = Budget(lat.repeats, lat.seconds_per_repeat * 2, 5, 500, 5)
    measure(
        result,
        [
            event_contender(
                SANDBOX,
                lambda: Sandbox(["bench_blob"], False, method, hooks.BLOB_EVENT),
                blob_kwargs,
                blob_ok,
            ),
            Contender(RAW_PIPE, raw_open, lambda length: length == BLOB_BYTES),
            event_contender(
                IN_PROCESS, lambda: InProcess([hooks.blob_hook]), blob_kwargs, blob_ok
            ),
            event_contender(
                POOL, lambda: Pool(1, "blob_hook", method), blob_kwargs, blob_ok
            ),
        ],
        big,
        placement=settings.placement,
    )
    ratio_check(result, "10 MiB vs raw pipe", SANDBOX, RAW_PIPE, "<=", 1.5)
    _undeclared(result, settings, blob)
    return result


UNDECLARED_SMALL = "rigger_sandbox, small event (hook takes item only)"
UNDECLARED_BIG = "rigger_sandbox, + undeclared 10 MiB argument"


def _undeclared(result: ScenarioResult, settings: Settings, blob: bytes) -> None:
    """One Rigger, one plugin whose hook declares ``item`` only; with and
    without a 10 MiB argument that the hook never asks for."""
    sandbox: Sandbox | None = None

    def open_shared() -> Sandbox:
        nonlocal sandbox
        if sandbox is None:
            sandbox = Sandbox(
                ["bench_item_only"],
                False,
                settings.start_method,
                hooks.SMALL_EVENT,
                [hooks.pre_count],
            )
        return sandbox

    def ok(outcome: Any) -> bool:
        return outcome[0].get("last") == hooks.SMALL_ITEM

    def opener(kwargs: dict[str, Any]) -> Callable[[], Any]:
        def open_() -> tuple[Callable[[], Any], Callable[[], None]]:
            target = open_shared()
            return (lambda: target.process_hook(**kwargs)), _close_once

        return open_

    def _close_once() -> None:
        nonlocal sandbox
        if sandbox is not None:
            closing, sandbox = sandbox, None
            closing.close()

    measure(
        result,
        [
            Contender(UNDECLARED_SMALL, opener(SMALL_KWARGS), ok),
            Contender(UNDECLARED_BIG, opener({**SMALL_KWARGS, "blob": blob}), ok),
        ],
        settings.latency,
        placement=settings.placement,
    )
    ratio_check(
        result,
        "undeclared 10 MiB vs small event",
        UNDECLARED_BIG,
        UNDECLARED_SMALL,
        "<=",
        1.1,
    )
