"""Per-instance statistics: calls, failures by kind, restarts, hook times."""

from __future__ import annotations

import collections

FAILURE_KINDS = ("exception", "crash", "timeout", "limit", "protocol")
# Percentiles are taken over the most recent calls, so that memory stays flat
# in sessions of millions of events.
WINDOW = 10_000


class InstanceStats:
    """Counters of one plugin instance, kept by the parent."""

    __slots__ = ("calls", "failures", "restarts", "times")

    def __init__(self) -> None:
        self.calls = 0
        self.failures = dict.fromkeys(FAILURE_KINDS, 0)
        self.restarts = 0
        self.times: collections.deque[float] = collections.deque(maxlen=WINDOW)

    def record(self, seconds: float, failure_kind: str | None) -> None:
        self.calls += 1
        self.times.append(seconds)
        if failure_kind is not None:
            self.failures[failure_kind] = self.failures.get(failure_kind, 0) + 1

    def snapshot(self, state: str, pid: int | None) -> dict:
        ordered = sorted(self.times)  # one C-level copy: safe beside appends
        return {
            "state": state,
            "pid": pid,
            "calls": self.calls,
            "failures": dict(self.failures),
            "restarts": self.restarts,
            "p50_ms": _percentile(ordered, 0.50),
            "p99_ms": _percentile(ordered, 0.99),
            "max_ms": ordered[-1] * 1000 if ordered else None,
        }


def _percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))
    return ordered[index] * 1000
