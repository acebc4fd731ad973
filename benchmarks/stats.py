"""Timing loops and robust statistics: medians, percentiles, MAD.

Every contender of a scenario is measured in interleaved repeats (repeat 1 of
each contender, then repeat 2 of each, ...) so that a noisy neighbour on the
shared machine hits all of them alike.  A repeat is a batch of calls timed one
by one with ``time.perf_counter_ns``; the reported median is the median of the
repeats' medians, the spread is their median absolute deviation (as pyperf's
``stats`` reports), and p99 comes from all calls of all repeats pooled.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

perf_ns = time.perf_counter_ns


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (``fraction`` in 0..1)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Summary:
    """Statistics of one contender in one scenario, in microseconds."""

    median_us: float
    p50_us: float
    p99_us: float
    min_us: float
    max_us: float
    mad_us: float
    calls: int
    repeat_medians_us: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, repeats: Sequence[Sequence[int]]) -> Summary:
        """Summarise per-call durations in nanoseconds, grouped by repeat."""
        repeats = [r for r in repeats if r]
        if not repeats:
            raise ValueError("no samples were collected")
        medians = [statistics.median(r) / 1000 for r in repeats]
        pooled = sorted(v / 1000 for r in repeats for v in r)
        center = statistics.median(medians)
        mad = statistics.median(abs(m - center) for m in medians)
        return cls(
            median_us=center,
            p50_us=percentile(pooled, 0.50),
            p99_us=percentile(pooled, 0.99),
            min_us=pooled[0],
            max_us=pooled[-1],
            mad_us=mad,
            calls=len(pooled),
            repeat_medians_us=medians,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_us": self.median_us,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "min_us": self.min_us,
            "max_us": self.max_us,
            "mad_us": self.mad_us,
            "calls": self.calls,
            "repeat_medians_us": self.repeat_medians_us,
        }


@dataclass
class Budget:
    """How long to measure: repeats, and the time and call bounds per repeat."""

    repeats: int
    seconds_per_repeat: float
    min_calls: int
    max_calls: int
    warmup_calls: int

    def scaled(self, factor: float) -> Budget:
        """The same budget with ``factor`` times the calls (for slow contenders)."""
        return Budget(
            self.repeats,
            self.seconds_per_repeat * factor,
            max(1, int(self.min_calls * factor)),
            max(1, int(self.max_calls * factor)),
            max(1, int(self.warmup_calls * factor)),
        )


def time_calls(call: Callable[[], object], count: int, quiet_gc: bool) -> list[int]:
    """Time ``count`` calls one by one; with ``quiet_gc`` the collector is off.

    The collector is switched off only inside the loop and a collection runs
    right after it, so garbage never piles up across repeats.
    """
    samples = [0] * count
    was_enabled = gc.isenabled()
    if quiet_gc:
        gc.disable()
    try:
        for index in range(count):
            start = perf_ns()
            call()
            samples[index] = perf_ns() - start
    finally:
        if quiet_gc and was_enabled:
            gc.enable()
    if quiet_gc:
        gc.collect()
    return samples


def calibrate(call: Callable[[], object], budget: Budget, quiet_gc: bool) -> int:
    """Warm up, then choose how many calls fit the per-repeat time budget."""
    warm = time_calls(call, budget.warmup_calls, quiet_gc)
    typical_ns = max(1, statistics.median(warm))
    wanted = int(budget.seconds_per_repeat * 1e9 / typical_ns)
    return max(budget.min_calls, min(budget.max_calls, wanted))


def interleaved(
    contenders: Sequence[tuple[str, Callable[[], object]]],
    budget: Budget,
    quiet_gc: bool = True,
) -> dict[str, Summary]:
    """Measure each named call in interleaved repeats; return their summaries."""
    counts = {name: calibrate(call, budget, quiet_gc) for name, call in contenders}
    samples: dict[str, list[list[int]]] = {name: [] for name, _ in contenders}
    for _ in range(budget.repeats):
        for name, call in contenders:
            samples[name].append(time_calls(call, counts[name], quiet_gc))
    return {name: Summary.of(samples[name]) for name, _ in contenders}


def time_once(call: Callable[[], object]) -> int:
    """Nanoseconds for a single call (for slow operations such as a start)."""
    start = perf_ns()
    call()
    return perf_ns() - start
