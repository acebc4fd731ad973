"""Hook calls in flight: sending, and waiting for replies within deadlines.

The orchestration layer hands this module a list of :class:`Call` records; it
writes each request, then waits for every reply with one ``poll`` across the
reply pipes and pidfds of the plugin processes involved, bounded by the
earliest deadline.  Replies are turned into results or errors by ``replies``;
a call past its timeout kills its process (which restarts before its next
hook) and fails with :class:`~rigger_sandbox.HookTimeout`.
"""

from __future__ import annotations

import select
import time

from . import replies, wire
from .errors import ArgumentError, HookError, HookTimeout, PluginCrashed
from .process import PluginProcess, describe_exit
from .replies import BackgroundHandler

_POLL_IN = select.POLLIN | select.POLLHUP | select.POLLERR


class Call:
    """One request to one plugin process and, once done, its outcome."""

    __slots__ = (
        "proc",
        "call_id",
        "hook",
        "kind",
        "payload",
        "codec",
        "timeout",
        "deadline",
        "started",
        "done",
        "local",
        "global_",
        "nested",
        "error",
        "elapsed",
    )

    def __init__(
        self,
        proc: PluginProcess,
        hook: str,
        kind: int,
        codec: int,
        payload: bytes,
        timeout: float | None,
    ) -> None:
        self.proc = proc
        self.call_id = proc.new_call_id()
        self.hook = hook
        self.kind = kind
        self.codec = codec
        self.payload = payload
        self.timeout = timeout
        self.deadline: float | None = None
        self.started = 0.0
        self.done = False
        self.local: dict | None = None
        self.global_: dict | None = None
        self.nested: list = []
        self.error: HookError | None = None
        self.elapsed = 0.0


def send(call: Call) -> bool:
    """Write the call's request; on failure the call is done with an error."""
    proc = call.proc
    call.started = time.monotonic()
    call.deadline = None if call.timeout is None else call.started + call.timeout
    try:
        proc.send(call.kind, call.codec, call.payload, call.deadline)
    except TimeoutError:
        _fail_timeout(call)
        return False
    except OSError:
        _fail_dead(call)
        return False
    return True


def wait(
    calls: list[Call],
    on_background: BackgroundHandler,
    until: float | None = None,
    background: list[PluginProcess] | None = None,
) -> None:
    """Wait until every call is done (and, with ``until``, background calls).

    Replies to background calls met on the way go to ``on_background``.
    ``background`` lists processes whose background calls to wait for too,
    until ``until`` (used at shutdown and by the background collector).
    """
    if len(calls) == 1 and not background:
        call = calls[0]
        if not call.done and not call.proc.background and call.proc.poller:
            _wait_one(call, on_background)
            return
    pending = [call for call in calls if not call.done]
    procs = {id(c.proc): c.proc for c in pending}
    for proc in background or ():
        if proc.background:
            procs[id(proc)] = proc
    live = [proc for proc in procs.values() if proc.poller is not None]
    if len(live) == 1:
        # The common case of one plugin: its poller is registered at launch.
        poller = live[0].poller
    else:
        poller = select.poll()
        for proc in live:
            poller.register(proc.reader.fd, _POLL_IN)  # type: ignore[union-attr]
            poller.register(proc.pidfd, _POLL_IN)
    by_fd = {}
    for proc in live:
        by_fd[proc.reader.fd] = proc  # type: ignore[union-attr]
        by_fd[proc.pidfd] = proc
    by_call = {(id(c.proc), c.call_id): c for c in pending}
    while True:
        pending = [call for call in pending if not call.done]
        waiting_bg = [p for p in procs.values() if p.background and p.reader]
        if not pending and (until is None or not waiting_bg):
            return
        now = time.monotonic()
        deadline = _earliest(pending, waiting_bg, until)
        if deadline is not None and deadline <= now:
            _expire(pending, waiting_bg, until, now, on_background)
            continue
        timeout_ms = None if deadline is None else wire.poll_ms(deadline - now)
        try:
            events = poller.poll(timeout_ms)
        except InterruptedError:
            continue
        for fd, _ in events:
            owner = by_fd.get(fd)
            if owner is None or owner.reader is None:
                continue  # ended while handling an earlier event of this batch
            proc = owner
            if fd == proc.pidfd:
                replies.process_exited(proc, by_call, on_background)
            else:
                replies.read(proc, by_call, on_background)
        if any(proc.poller is None for proc in live):
            # Some process ended: forget its descriptors (numbers may be reused).
            ended = [proc for proc in live if proc.poller is None]
            live = [proc for proc in live if proc.poller is not None]
            for proc in ended:
                for fd in [fd for fd, owner in by_fd.items() if owner is proc]:
                    del by_fd[fd]
                    if len(live) + len(ended) > 1:
                        try:
                            poller.unregister(fd)
                        except KeyError:
                            pass


def _wait_one(call: Call, on_background: BackgroundHandler) -> None:
    """``wait`` for the common case: one call, nothing in the background."""
    proc = call.proc
    poller = proc.poller
    pidfd = proc.pidfd
    by_call = {(id(proc), call.call_id): call}
    while not call.done:
        timeout_ms = None
        if call.deadline is not None:
            left = call.deadline - time.monotonic()
            if left <= 0:
                _fail_timeout(call)
                return
            timeout_ms = wire.poll_ms(left)
        try:
            events = poller.poll(timeout_ms)
        except InterruptedError:
            continue
        for fd, _ in events:
            if proc.reader is None:
                break
            if fd == pidfd:
                replies.process_exited(proc, by_call, on_background)
            else:
                replies.read(proc, by_call, on_background)
        if proc.background:
            # A background reply interleaved: finish in the general loop.
            wait([call], on_background, background=[proc])
            return


def collect_background(
    procs: list[PluginProcess], on_background: BackgroundHandler
) -> None:
    """Take the background replies that have arrived; end the ones past due."""
    now = time.monotonic()
    for proc in procs:
        if proc.poller is None or not proc.background:
            continue
        fds = {fd for fd, _ in proc.poller.poll(0)}
        if proc.pidfd in fds:
            replies.process_exited(proc, {}, on_background)
        elif fds:
            replies.read(proc, {}, on_background)
    _expire([], [p for p in procs if p.background], None, now, on_background)


def _earliest(
    pending: list[Call], waiting_bg: list[PluginProcess], until: float | None
) -> float | None:
    deadlines = [c.deadline for c in pending if c.deadline is not None]
    for proc in waiting_bg:
        deadlines.extend(
            b.deadline for b in proc.background.values() if b.deadline is not None
        )
    if until is not None and until != float("inf") and waiting_bg:
        deadlines.append(until)
    return min(deadlines) if deadlines else None


def _expire(
    pending: list[Call],
    waiting_bg: list[PluginProcess],
    until: float | None,
    now: float,
    on_background: BackgroundHandler,
) -> None:
    for call in pending:
        if call.deadline is not None and call.deadline <= now and not call.done:
            _fail_timeout(call)
            _fail_others(call.proc, pending, on_background, call.error)
    for proc in waiting_bg:
        for hook, deadline, started, _ in list(proc.background.values()):
            late = deadline is not None and deadline <= now
            if late or (until is not None and until <= now):
                timeout = None if deadline is None else deadline - started
                error = HookTimeout(
                    f"background hook did not finish within {timeout} s"
                    if late
                    else "background hook still running at shutdown; killed",
                    ident=proc.ident,
                    hook=hook,
                    timeout=timeout,
                )
                proc.kill_for_restart()
                _fail_others(proc, pending, on_background, error)
                break


def _fail_others(
    proc: PluginProcess,
    pending: list[Call],
    on_background: BackgroundHandler,
    cause: HookError | None,
) -> None:
    """After a kill, every other call in flight to the same process fails too."""
    for call in pending:
        if call.proc is proc and not call.done:
            call.done = True
            call.error = PluginCrashed(
                f"the process was killed while this call waited: {cause}",
                ident=proc.ident,
                hook=call.hook,
                signal=9,
            )
    for call_id, entry in list(proc.background.items()):
        hook = entry.hook
        on_background(
            proc,
            call_id,
            None,
            cause
            if cause and cause.hook == hook
            else PluginCrashed(
                "the process was killed", ident=proc.ident, hook=hook, signal=9
            ),
        )


def _fail_timeout(call: Call) -> None:
    call.proc.kill_for_restart()
    call.done = True
    call.elapsed = time.monotonic() - call.started
    call.error = HookTimeout(
        f"no reply within the timeout of {call.timeout} s; the process was killed",
        ident=call.proc.ident,
        hook=call.hook,
        timeout=call.timeout,
    )


def _fail_dead(call: Call) -> None:
    status = call.proc.kill_for_restart()
    call.done = True
    call.error = replies.crash_error(
        call.proc,
        PluginCrashed,
        f"the process was gone when the call was sent: {describe_exit(status)}",
        call.hook,
        status,
    )


def encode_request(call: Call, selected: dict) -> tuple[int, bytes]:
    """Encode a hook request; name the argument that cannot be sent."""
    try:
        return wire.encode((call.call_id, call.hook, selected))
    except Exception:  # noqa: BLE001 - find the culprit for the message
        for key, value in selected.items():
            try:
                wire.encode(value)
            except Exception as exc:  # noqa: BLE001
                raise ArgumentError(
                    f"argument {key!r} of hook {call.hook!r} cannot be sent to plugin "
                    f"{call.proc.ident!r}: {type(value).__name__} is not "
                    f"serializable by pickle or dill ({exc})"
                ) from None
        raise
