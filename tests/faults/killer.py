"""A thread that signals a plugin from outside once its hook has announced itself."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

RENDEZVOUS_TIMEOUT_S = 30.0


class Killer:
    """Send ``signum`` to a plugin's pid once ``ready`` appears, from a thread.

    The hook writes its own pid into ``ready`` right before it blocks; the
    killer checks that this is the pid ``rig.plugin_pids()`` reported, so the
    signal provably reaches the process that runs the hook.
    """

    def __init__(self, ready: Path, signum: int) -> None:
        self.ready = ready
        self.signum = signum
        self.target: int | None = None
        self.problem: str | None = None
        self.sent = False
        self._thread: threading.Thread | None = None

    def arm(self, pid: int) -> None:
        self.target = pid
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + RENDEZVOUS_TIMEOUT_S
        while not self.ready.exists():
            if time.monotonic() > deadline:
                self.problem = f"{self.ready} did not appear: the hook never ran"
                return
            time.sleep(0.005)
        announced = int(self.ready.read_text())
        if announced != self.target:
            self.problem = (
                f"the hook runs in pid {announced}, plugin_pids() said {self.target}"
            )
            return
        os.kill(announced, self.signum)
        self.sent = True

    def check(self) -> None:
        """Join the thread and fail if the signal was not delivered as planned."""
        assert self._thread is not None, "killer was never armed"
        self._thread.join(RENDEZVOUS_TIMEOUT_S)
        assert not self._thread.is_alive(), "killer thread is stuck"
        assert self.problem is None, self.problem
        assert self.sent
