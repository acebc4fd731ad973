"""Command line of the benchmark runner: choose scenarios, run, report.

The exit status is 1 when any scenario raised (a contender failed to start, a
call failed or returned a wrong result), 2 for bad arguments, and 0 otherwise:
a missed target is reported, never turned into a failure, because timings on
a shared machine are no test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Sequence

from . import external, plot, reporting
from .machine import machine_info
from .placement import PLACEMENTS, Placement
from .sandbox import CONTAINMENT
from .scenarios import SCENARIOS, ScenarioResult, Settings

START_METHODS = ("fork", "forkserver", "spawn")
SKIPPABLE = ("riggerlib", "ray")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure rigger_sandbox side by side with its baselines.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run that finishes in under a minute",
    )
    parser.add_argument("--json", metavar="FILE", help="write all numbers to FILE")
    parser.add_argument(
        "--markdown", metavar="FILE", help="write the targets as a Markdown table"
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="write latency against number of plugins (needs "
        "matplotlib); measures 1, 2, 4 and 8 plugins",
    )
    parser.add_argument(
        "--only",
        metavar="LIST",
        default="".join(SCENARIOS),
        help="scenarios to run, e.g. AD (default: all)",
    )
    parser.add_argument(
        "--start-method",
        choices=START_METHODS,
        default="forkserver",
        help="start method of the plugin processes and pools",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="repeats per contender (default 7, quick 3; slow scenarios 5, quick 2)",
    )
    parser.add_argument(
        "--events",
        type=int,
        metavar="N",
        help="events of scenario F (default 100000, quick 2000)",
    )
    parser.add_argument(
        "--skip",
        metavar="LIST",
        default="",
        help=f"comma-separated baselines to leave out: {SKIPPABLE}",
    )
    parser.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="split",
        help="CPU placement for the latency scenarios A, B, D: split (runner "
        "on one CPU, the processes it starts on the others; default), same (all "
        "on one CPU: software cost without cross-CPU wake-ups), free",
    )
    parser.add_argument(
        "--profile",
        metavar="N",
        type=int,
        nargs="?",
        const=5000,
        help="profile N events of scenario A (cProfile, parent "
        "side) and print the hottest functions",
    )
    args = parser.parse_args(argv)

    args.only = args.only.upper().replace(",", "")
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"--only: unknown scenarios {unknown}; expected letters of "
            f"{''.join(SCENARIOS)}"
        )
    skips = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skips - set(SKIPPABLE):
        parser.error(
            f"--skip: unknown baselines {sorted(skips - set(SKIPPABLE))}; "
            f"expected some of {SKIPPABLE}"
        )
    args.skip = skips
    for name in ("repeats", "events", "profile"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    return args


def profile_scenario_a(settings: Settings, events: int) -> str:
    """cProfile of ``events`` small events through one plugin (parent side)."""
    with Placement(settings.placement) as placed:
        return _profile(settings, events, placed)


def _profile(settings: Settings, events: int, placed: Placement) -> str:
    from . import hooks
    from .sandbox import Sandbox

    sandbox = Sandbox(
        ["bench_small"],
        False,
        settings.start_method,
        hooks.SMALL_EVENT,
        [hooks.pre_count],
    )
    placed.settle()
    try:
        for _ in range(500):
            sandbox.process_hook(item=hooks.SMALL_ITEM)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(events):
            sandbox.process_hook(item=hooks.SMALL_ITEM)
        profiler.disable()
    finally:
        sandbox.close()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return text.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.make(
        args.quick, args.start_method, args.repeats, args.events, sweep=bool(args.plot)
    )
    settings.with_ray = "ray" not in args.skip
    settings.with_riggerlib = "riggerlib" not in args.skip
    settings.placement = args.placement
    machine = machine_info(args.start_method)
    described = {
        "quick": settings.quick,
        "method": (
            f"{settings.latency.repeats} repeats x up to "
            f"{settings.latency.seconds_per_repeat} s per contender, "
            f"{settings.slow_repeats} repeats for C and E, "
            f"gc off inside timed loops except C and F"
        ),
        "containment": CONTAINMENT,
        "events_f": settings.events,
        "sweep_sizes": list(settings.sweep_sizes),
        "placement": Placement(args.placement).describe(),
    }
    print(reporting.header(machine, described), flush=True)

    began = time.monotonic()
    results: list[ScenarioResult] = []
    try:
        for key in args.only:
            try:
                result = SCENARIOS[key](settings)
            except Exception:
                result = ScenarioResult(key, "(did not run to the end)")
                result.fail(f"scenario {key}")
            results.append(result)
            print(reporting.scenario_table(result), flush=True)
        if args.profile:
            print(f"\n== profile: {args.profile} events of scenario A, parent side ==")
            print(profile_scenario_a(settings, args.profile))
    finally:
        external.shutdown_ray()

    print(reporting.summary_line(results))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    described["load_average_end"] = load
    print(f"run took {time.monotonic() - began:.1f} s; load average at the end: {load}")
    if args.json:
        reporting.write_json(args.json, machine, described, results)
        print(f"numbers written to {args.json}")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as handle:
            handle.write(reporting.markdown(results, machine))
        print(f"Markdown table written to {args.markdown}")
    if args.plot:
        _write_plot(args.plot, results, machine, args.placement)
    return 1 if any(r.errors for r in results) else 0


def _write_plot(
    path: str, results: Sequence[ScenarioResult], machine: dict, placement: str
) -> None:
    reason = plot.matplotlib_unavailable()
    sweep = next(
        (r.extra.get("sweep_median_us") for r in results if r.key == "B"), None
    )
    if reason:
        print(f"plot skipped: {reason}")
    elif not sweep:
        print("plot skipped: scenario B (the fan-out sweep) did not run")
    else:
        title = (
            f"one small event, threaded; {machine['cpu_count']} CPUs, "
            f"Python {machine['python']}, {machine['start_method']}, "
            f"placement {placement}"
        )
        plot.plot_sweep(sweep, path, title)
        print(f"plot written to {path}")


if __name__ == "__main__":
    sys.exit(main())
