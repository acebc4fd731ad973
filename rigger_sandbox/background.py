"""Background hooks: the Rigger's side of them, and the collector thread.

A background hook is sent without waiting.  Its reply is read by whoever reads
that plugin's pipe next: an event in progress (while it waits for the same
plugin) or this thread, which polls the reply pipes and pidfds of plugins with
background calls outstanding and takes the Rigger's event lock before it reads
or merges anything, so a background update never lands half-way through an
event's merge.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import calls, wire
from .errors import HookError, NestedEventError, RiggerError
from .namespaces import recursive_update
from .process import BackgroundCall, PluginProcess

if TYPE_CHECKING:
    from .calls import Call
    from .config import Settings
    from .nested import NestedQueue

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


class BackgroundHooks:
    """The Rigger's side of background hooks: send, merge, run their events.

    A mixin of :class:`~rigger_sandbox.Rigger`; everything here runs under
    the Rigger's event lock.
    """

    if TYPE_CHECKING:
        _settings: Settings | None
        _procs: dict[str, PluginProcess]
        _lock: threading.RLock
        _collector: BackgroundCollector | None
        _background_nested: collections.deque[tuple[str, dict, int]]
        global_data: dict

        def _record(
            self, proc: PluginProcess, seconds: float, error: HookError | str | None
        ) -> None: ...
        def _account(self, call: Call) -> None: ...
        def _failure(self, error: RiggerError) -> None: ...
        def handle_failure(self, error: RiggerError) -> None: ...
        def _nested_queue(self, top: str) -> NestedQueue: ...
        def _run_nested(self, queue: NestedQueue) -> None: ...

    def _send_background(self, call: Call, depth: int) -> None:
        proc = call.proc
        if not calls.send(call):
            self._account(call)
            self._failure(call.error)  # type: ignore[arg-type]
            return
        proc.background[call.call_id] = BackgroundCall(
            call.hook, call.deadline, call.started, depth
        )
        if self._collector is None:
            self._collector = BackgroundCollector(
                self._lock, lambda: list(self._procs.values()), self._collect_background
            )
        else:
            self._collector.wake()

    def _collect_background(self, procs: list[PluginProcess]) -> None:
        """The collector's round, under the event lock: merge, then run events."""
        calls.collect_background(procs, self._on_background)
        if self._background_nested:
            self._run_background_nested()

    def _on_background(
        self,
        proc: PluginProcess,
        call_id: int,
        message: tuple | None,
        error: HookError | None,
    ) -> None:
        """A background call finished: merge its global updates, or report it."""
        entry = proc.background.pop(call_id, None)
        if entry is None:
            return
        self._record(proc, time.monotonic() - entry.started, error)
        if error is not None:
            if self._settings and self._settings.squash_exceptions:
                self.handle_failure(error)
            else:
                # Nobody waits for a background hook: there is no caller to
                # raise to, so the failure is logged.
                log.error("background hook failed: %s", error)
            return
        assert message is not None
        if message[2]:
            recursive_update(self.global_data, message[2])
        if message[3]:
            self._queue_background_nested(proc, message[3], entry.depth + 1)

    def _queue_background_nested(
        self, proc: PluginProcess, events: list, depth: int
    ) -> None:
        assert self._settings is not None
        room = self._settings.max_nested_events - len(self._background_nested)
        for name, kwargs in events[: max(room, 0)]:
            self._background_nested.append((name, kwargs, depth))
        if len(events) > room:
            error = NestedEventError(
                f"background hooks queued more than max_nested_events "
                f"({self._settings.max_nested_events}) events; plugin "
                f"{proc.ident!r}'s extra events were dropped"
            )
            if self._settings.squash_exceptions:
                self.handle_failure(error)
            else:
                log.error("%s", error)

    def _run_background_nested(self) -> None:
        """Run the events background hooks fired, each as an event of its own.

        They run after the event in progress (or, between events, from the
        background collector).  Nobody waits for them, so a failure that
        would be raised is logged instead.
        """
        while self._background_nested:
            name, kwargs, depth = self._background_nested.popleft()
            queue = self._nested_queue(name)
            try:
                # The chain's depth carries over, so a background hook that
                # fires its own event again stops at max_nested_depth.
                error = queue.add(name, kwargs, depth)
                if error is not None:
                    self._failure(error)
                    continue
                self._run_nested(queue)
            except RiggerError as exc:
                log.error("event %r fired by a background hook failed: %s", name, exc)
