"""The background collector: merges replies of background hooks between events.

A background hook is sent without waiting.  Its reply is read by whoever reads
that plugin's pipe next: an event in progress (while it waits for the same
plugin) or this thread, which polls the reply pipes and pidfds of plugins with
background calls outstanding and takes the Rigger's event lock before it reads
or merges anything, so a background update never lands half-way through an
event's merge.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable

from . import wire
from .process import PluginProcess

log = logging.getLogger("rigger_sandbox.background")


class BackgroundCollector:
    """A thread started at the first background call, stopped by ``close()``."""

    def __init__(
        self,
        lock: threading.RLock,
        procs: Callable[[], list[PluginProcess]],
        collect: Callable[[list[PluginProcess]], None],
    ) -> None:
        self._lock = lock
        self._procs = procs
        self._collect = collect
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread = threading.Thread(
            target=self._run, name="rigger-background", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """Tell the thread that the set of background calls changed."""
        os.write(self._wake_w, b"x")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (call without holding the event lock)."""
        self._closing = True
        self.wake()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _outstanding(self) -> list[PluginProcess]:
        return [p for p in self._procs() if p.background and p.poller is not None]

    def _run(self) -> None:
        while not self._closing:
            try:
                self._round()
            except Exception:  # noqa: BLE001 - this thread must outlive any one error
                log.exception("background collector: unexpected error; going on")

    def _round(self) -> None:
        """Wait for a background reply (or a wake-up), then take it under the lock."""
        with self._lock:
            procs = self._outstanding()
            fds = [fd for p in procs for fd in p.fds()]
            deadlines = [
                b.deadline
                for p in procs
                for b in p.background.values()
                if b.deadline is not None
            ]
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        for fd in fds:
            poller.register(fd, select.POLLIN)
        timeout = None
        if deadlines:
            timeout = wire.poll_ms(min(deadlines) - time.monotonic())
        try:
            ready = poller.poll(timeout)
        except (InterruptedError, ValueError):
            ready = []
        if any(fd == self._wake_r for fd, _ in ready):
            try:
                os.read(self._wake_r, 4096)
            except OSError:
                pass
        if self._closing:
            return
        with self._lock:
            procs = self._outstanding()
            if procs:
                self._collect(procs)
