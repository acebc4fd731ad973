"""Where the runner and the processes it starts may run (CPU affinity).

On a small virtual machine a round trip between two processes costs about
ten times more when they sit on different CPUs (the wake-up crosses CPUs)
than when they share one, and the scheduler picks either, per process and
per run.  Left alone, two contenders of one scenario may land differently and
their ratio says more about placement than about code.  Latency scenarios
therefore run under one explicit placement for every contender:

- ``split``: the runner's timing thread on the first CPU, every process it
  started (plugin processes, pipe children, pool workers, Ray) on the others;
  the usual case for a busy parent, and the same for all contenders.
- ``same``: everything on the first CPU; shows the software cost alone.
- ``free``: no affinity set; the scheduler decides.
"""

from __future__ import annotations

import os
from types import TracebackType

import psutil

PLACEMENTS = ("split", "same", "free")


def _set(pid: int, cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(pid, cpus)
    except (ProcessLookupError, PermissionError):
        pass  # the process ended meanwhile, or is not ours to move


class Placement:
    """A context that pins the runner and settles its descendants."""

    def __init__(self, mode: str) -> None:
        if mode not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {mode!r}")
        self.all_cpus = set(os.sched_getaffinity(0))
        first = min(self.all_cpus)
        if mode == "split" and len(self.all_cpus) < 2:
            mode = "same"
        self.mode = mode
        self.parent_cpus = {first}
        others = self.all_cpus - {first}
        self.child_cpus = others if mode == "split" else {first}

    def describe(self) -> str:
        if self.mode == "free":
            return "free (the scheduler places every process)"
        return (
            f"{self.mode}: runner on CPU {sorted(self.parent_cpus)}, processes it "
            f"started on CPUs {sorted(self.child_cpus)}"
        )

    def __enter__(self) -> Placement:
        if self.mode != "free":
            # Only the calling thread moves; threads it creates later follow it.
            os.sched_setaffinity(0, self.parent_cpus)
            self.settle()
        return self

    def settle(self) -> None:
        """Move every current descendant process onto the children's CPUs."""
        if self.mode == "free":
            return
        for child in psutil.Process().children(recursive=True):
            _set(child.pid, self.child_cpus)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.mode == "free":
            return
        os.sched_setaffinity(0, self.all_cpus)
        # The forkserver and other long-lived helpers started meanwhile must
        # not keep the pinning for the scenarios that need every CPU.
        for child in psutil.Process().children(recursive=True):
            _set(child.pid, self.all_cpus)
