"""The printed table, the PASS/MISS lines, and the JSON file of a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .machine import describe
from .scenarios import ScenarioResult
from .scenarios.common import Check

NAME_WIDTH = 50


def format_us(value: float) -> str:
    """A duration given in microseconds, in the unit that reads best."""
    if value < 1000:
        return f"{value:.1f} us"
    if value < 1_000_000:
        return f"{value / 1000:.2f} ms"
    return f"{value / 1_000_000:.3f} s"


def _format_value(value: float, unit: str) -> str:
    if unit == "fds":
        return f"{value:.0f} {unit}"
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
        f"placement (A, B, D): {settings['placement']}\n"
        "median = median of the repeats' medians; MAD = their median absolute "
        "deviation;\np99 over all calls pooled; ratio = median / median of the "
        "scenario's first row"
    )


def scenario_table(result: ScenarioResult) -> str:
    """The block printed for one scenario."""
    lines = [f"\n== {result.key}: {result.title} =="]
    references: dict[int, float] = {}
    for row in result.rows:
        if row.summary is not None and row.group not in references:
            references[row.group] = row.summary.median_us
    if references:
        lines.append(
            f"  {'contender':<{NAME_WIDTH}} {'median':>10} {'p99':>10} "
            f"{'MAD':>9} {'ratio':>8}"
        )
    previous = None
    for row in result.rows:
        if previous is not None and row.group != previous:
            lines.append("")
        previous = row.group
        if row.summary is not None:
            s = row.summary
            reference = references[row.group]
            ratio = f"{s.median_us / reference:.2f}x" if reference else ""
            mad = format_us(s.mad_us) if len(s.repeat_medians_us) > 1 else "-"
            lines.append(
                f"  {row.name:<{NAME_WIDTH}} {format_us(s.median_us):>10} "
                f"{format_us(s.p99_us):>10} {mad:>9} {ratio:>8}"
            )
        elif row.value is not None:
            note = f"  ({row.note})" if row.note else ""
            value = _format_value(row.value, row.unit)
            lines.append(f"  {row.name:<{NAME_WIDTH}} {value:>10}{note}")
    for check in result.checks:
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[check.passed]
        lines.append(
            f"  {verdict}  {check.label:<34} {_measured(check):>8}  "
            f"target {check.target}  [{check.detail}]"
        )
    lines += [f"  note: {note}" for note in result.notes]
    lines += [f"  ERROR {error}" for error in result.errors]
    return "\n".join(lines)


def _measured(check: Check) -> str:
    if check.measured is None:
        return "-"
    suffix = "x" if check.target.lstrip("<=> ").split()[0].endswith("x") else ""
    return f"{check.measured:.2f}{suffix}"


def markdown(results: Sequence[ScenarioResult], machine: dict[str, Any]) -> str:
    """The targets of a run as a Markdown table (for README)."""
    lines = [
        f"Measured on {machine['cpu_count']} CPUs ({machine['cpu_model']}), "
        f"Python {machine['python']}, start method {machine['start_method']}.",
        "",
        "| scenario | target | measured | result | figures |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for check in result.checks:
            verdict = {True: "PASS", False: "MISS", None: "n/a"}[check.passed]
            lines.append(
                f"| {result.key}: {check.label} | {check.target} | "
                f"{_measured(check)} | {verdict} | {_figures(result, check)} |"
            )
        if result.errors:
            lines.append(f"| {result.key} | - | - | ERROR | see the runner output |")
    return "\n".join(lines) + "\n"


def _figures(result: ScenarioResult, check: Check) -> str:
    names = [n.strip() for n in check.detail.split(" / ")]
    parts = [
        f"{name} {format_us(median)}"
        for name in names
        if (median := result.median(name)) is not None
    ]
    return "; ".join(parts) if len(parts) == len(names) else check.detail


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
