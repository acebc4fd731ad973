"""The printed table, the PASS/MISS lines, and the JSON file of a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .machine import describe
from .scenarios import ScenarioResult

NAME_WIDTH = 50


def format_us(value: float) -> str:
    """A duration given in microseconds, in the unit that reads best."""
    if value < 1000:
        return f"{value:.1f} us"
    if value < 1_000_000:
        return f"{value / 1000:.2f} ms"
    return f"{value / 1_000_000:.3f} s"


def _format_value(value: float, unit: str) -> str:
    if unit == "ev/s":
        return f"{value:,.0f} {unit}"
    return f"{value:.2f} {unit}".rstrip()


def header(machine: dict[str, Any], settings: dict[str, Any]) -> str:
    """The lines that open a report: machine and how it was measured."""
    mode = "quick" if settings["quick"] else "full"
    return (
        f"{describe(machine)}\n"
        f"mode: {mode}; {settings['method']}\n"
        f"containment on: {settings['containment']}\n"
        "median = median of the repeats' medians; MAD = their median absolute "
        "deviation;\np99 over all calls pooled; ratio = median / median of the "
        "scenario's first row"
    )


def scenario_table(result: ScenarioResult) -> str:
    """The block printed for one scenario."""
    lines = [f"\n== {result.key}: {result.title} =="]
    timed = [r for r in result.rows if r.summary is not None]
    reference = timed[0].summary.median_us if timed and timed[0].summary else None
    if timed:
        lines.append(
            f"  {'contender':<{NAME_WIDTH}} {'median':>10} {'p99':>10} "
            f"{'MAD':>9} {'ratio':>8}"
        )
    for row in result.rows:
        if row.summary is not None:
            s = row.summary
            ratio = f"{s.median_us / reference:.2f}x" if reference else ""
            lines.append(
                f"  {row.name:<{NAME_WIDTH}} {format_us(s.median_us):>10} "
                f"{format_us(s.p99_us):>10} {format_us(s.mad_us):>9} {ratio:>8}"
            )
        elif row.value is not None:
            note = f"  ({row.note})" if row.note else ""
            value = _format_value(row.value, row.unit)
            lines.append(f"  {row.name:<{NAME_WIDTH}} {value:>10}{note}")
    for check in result.checks:
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[check.passed]
        measured = "-" if check.measured is None else f"{check.measured:.2f}"
        if check.measured is not None and "x" in check.target:
            measured += "x"
        lines.append(
            f"  {verdict}  {check.label:<34} {measured:>8}  target {check.target}"
            f"  [{check.detail}]"
        )
    lines += [f"  note: {note}" for note in result.notes]
    lines += [f"  ERROR {error}" for error in result.errors]
    return "\n".join(lines)


def summary_line(results: Sequence[ScenarioResult]) -> str:
    """The closing line: how many targets held, missed, or could not be checked."""
    checks = [c for r in results for c in r.checks]
    passed = sum(c.passed is True for c in checks)
    missed = [
        f"{r.key}: {c.label}" for r in results for c in r.checks if c.passed is False
    ]
    unknown = sum(c.passed is None for c in checks)
    errored = [r.key for r in results if r.errors]
    text = f"\ntargets: {passed} PASS, {len(missed)} MISS, {unknown} n/a"
    if missed:
        text += "\nmissed: " + "; ".join(missed)
    if errored:
        text += f"\nscenarios with errors: {', '.join(errored)}"
    return text


def write_json(
    path: str,
    machine: dict[str, Any],
    settings: dict[str, Any],
    results: Sequence[ScenarioResult],
) -> None:
    """Write every number of the run to ``path``."""
    document = {
        "machine": machine,
        "settings": settings,
        "scenarios": [r.as_dict() for r in results],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=False)
        handle.write("\n")
