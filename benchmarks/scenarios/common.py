"""What every scenario shares: settings, result records, the contender harness."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..placement import Placement
from ..stats import Budget, Summary, interleaved


@dataclass
class Settings:
    """How one run measures: start method, budgets, sizes."""

    quick: bool
    start_method: str
    latency: Budget
    slow_repeats: int
    events: int
    sweep_sizes: tuple[int, ...]
    with_ray: bool = True
    with_riggerlib: bool = True
    placement: str = "split"

    @classmethod
    def make(
        cls,
        quick: bool,
        start_method: str,
        repeats: int | None = None,
        events: int | None = None,
        sweep: bool = False,
    ) -> Settings:
        if quick:
            latency = Budget(repeats or 3, 0.05, 5, 2000, 20)
            slow = repeats or 2
        else:
            latency = Budget(repeats or 7, 0.25, 10, 20000, 200)
            slow = repeats or 5
        sizes = (1, 2, 4, 8) if sweep or not quick else (8,)
        return cls(
            quick=quick,
            start_method=start_method,
            latency=latency,
            slow_repeats=slow,
            events=events or (2000 if quick else 100_000),
            sweep_sizes=sizes,
        )


@dataclass
class Row:
    """One line of a scenario table: a timed contender or a single figure."""

    name: str
    summary: Summary | None = None
    value: float | None = None
    unit: str = ""
    note: str = ""
    group: int = 0

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "note": self.note}
        data["group"] = self.group
        if self.summary is not None:
            data.update(self.summary.as_dict())
        if self.value is not None:
            data.update(value=self.value, unit=self.unit)
        return data


@dataclass
class Check:
    """A target of the issue: measured figure, target, and whether it holds.

    ``passed`` is ``None`` when the figure could not be measured (a baseline
    is not installed, or the scenario failed).
    """

    label: str
    measured: float | None
    target: str
    passed: bool | None
    detail: str = ""


@dataclass
class ScenarioResult:
    """Everything one scenario produced, including its errors."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def next_group(self) -> int:
        """A new group number: ratios in the table are within a group."""
        return max((r.group for r in self.rows), default=-1) + 1

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def median(self, name: str) -> float | None:
        row = self.row(name)
        return row.summary.median_us if row and row.summary else None

    def fail(self, what: str) -> None:
        """Record the exception being handled as an error of this scenario."""
        self.errors.append(f"{what}:\n{traceback.format_exc().rstrip()}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "rows": [r.as_dict() for r in self.rows],
            "checks": [asdict(c) for c in self.checks],
            "notes": self.notes,
            "errors": self.errors,
            "extra": self.extra,
        }


Opened = tuple[Callable[[], Any], Callable[[], None]]


@dataclass
class Contender:
    """A named way to run the scenario's event.

    ``open`` starts it and returns ``(call, close)``; ``check`` verifies one
    call's result so a broken contender is never timed; ``skip`` says why the
    contender cannot run here.
    """

    name: str
    open: Callable[[], Opened] | None
    check: Callable[[Any], bool]
    skip: str | None = None


def event_contender(
    name: str,
    factory: Callable[[], Any],
    kwargs: dict[str, Any],
    check: Callable[[Any], bool],
    skip: str | None = None,
) -> Contender:
    """A contender whose object has ``process_hook(**kwargs)`` and ``close()``."""

    def open_() -> Opened:
        target = factory()
        return (lambda: target.process_hook(**kwargs)), target.close

    return Contender(name, None if skip else open_, check, skip)


def measure(
    result: ScenarioResult,
    contenders: Sequence[Contender],
    budget: Budget,
    quiet_gc: bool = True,
    placement: str = "free",
) -> dict[str, Summary]:
    """Open, verify, time (interleaved) and close the contenders.

    Everything runs under ``placement`` (see :mod:`benchmarks.placement`).  A
    contender that fails to open or returns a wrong result is recorded as an
    error and left out; the others are still measured.
    """
    with Placement(placement) as placed:
        return _measure(result, contenders, budget, quiet_gc, placed)


def _measure(
    result: ScenarioResult,
    contenders: Sequence[Contender],
    budget: Budget,
    quiet_gc: bool,
    placed: Placement,
) -> dict[str, Summary]:
    opened: list[tuple[str, Callable[[], Any], Callable[[], None]]] = []
    try:
        for contender in contenders:
            if contender.open is None:
                result.notes.append(f"{contender.name}: skipped, {contender.skip}")
                continue
            try:
                call, close = contender.open()
            except Exception:
                result.fail(f"{contender.name}: could not start")
                continue
            opened.append((contender.name, call, close))
            try:
                outcome = call()
                if not contender.check(outcome):
                    raise AssertionError(f"unexpected result: {_short(outcome)}")
            except Exception:
                result.fail(f"{contender.name}: wrong or failed first call")
                opened.pop()
                try:
                    close()
                except Exception:
                    result.fail(f"{contender.name}: could not stop")
        # Pool workers and the like exist only after a first call: settle the
        # processes now, then measure.
        placed.settle()
        summaries = interleaved([(n, c) for n, c, _ in opened], budget, quiet_gc)
        group = result.next_group()
        for name, summary in summaries.items():
            result.rows.append(Row(name, summary, group=group))
        return summaries
    finally:
        for name, _, close in opened:
            try:
                close()
            except Exception:
                result.fail(f"{name}: could not stop")


def ratio_check(
    result: ScenarioResult,
    label: str,
    numerator: str,
    denominator: str,
    op: str,
    limit: float,
    aim: str = "",
) -> Check:
    """A check on median(numerator) / median(denominator) against ``limit``."""
    top, bottom = result.median(numerator), result.median(denominator)
    target = f"{op} {limit:g}x" + (f" ({aim})" if aim else "")
    if top is None or bottom is None or bottom == 0:
        missing = numerator if top is None else denominator
        check = Check(label, None, target, None, f"{missing} not measured")
    else:
        value = top / bottom
        passed = value <= limit if op == "<=" else value >= limit
        check = Check(label, value, target, passed, f"{numerator} / {denominator}")
    result.checks.append(check)
    return check


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."
