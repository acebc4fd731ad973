"""Hook calls in flight: sending, waiting with deadlines, turning replies into results.

The orchestration layer hands this module a list of :class:`Call` records; it
writes each request, then waits for every reply with one ``poll`` across all
the plugin processes involved, bounded by the earliest deadline.  A reply is
decoded (allow-list decoder unless the instance is trusted) and checked for
shape; anything else that can happen to a process in flight (death, garbage,
silence past the timeout) becomes a :class:`~rigger_sandbox.HookError` on the
call, and the process is killed so it restarts clean.
"""

from __future__ import annotations

import logging
import pickletools
import select
import time
from collections.abc import Callable
from typing import Any

from . import wire
from .errors import (
    HookError,
    HookTimeout,
    PluginCrashed,
    ProtocolError,
    ResourceLimitExceeded,
    UnsafeValueError,
)
from .process import PluginProcess, describe_exit

log = logging.getLogger("rigger_sandbox.calls")

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


BackgroundHandler = Callable[[PluginProcess, int, Any, HookError | None], None]


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
        timeout_ms = None if deadline is None else max(1, int((deadline - now) * 1000))
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
                _process_exited(proc, by_call, on_background)
            else:
                _read(proc, by_call, on_background)
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
            timeout_ms = max(1, int(left * 1000))
        try:
            events = poller.poll(timeout_ms)
        except InterruptedError:
            continue
        for fd, _ in events:
            if proc.reader is None:
                break
            if fd == pidfd:
                _process_exited(proc, by_call, on_background)
            else:
                _read(proc, by_call, on_background)
        if proc.background:
            # A background reply interleaved: finish in the general loop.
            wait([call], on_background, background=[proc])
            return


def _process_exited(
    proc: PluginProcess, by_call: dict, on_background: BackgroundHandler
) -> None:
    """The process is gone: take the replies it sent, fail the calls it did not."""
    _read(proc, by_call, on_background)
    if proc.reader is not None and (
        proc.background
        or any(pid == id(proc) and not c.done for (pid, _), c in by_call.items())
    ):
        _channel_broken(proc, "exit", by_call, on_background)
    elif proc.reader is not None:
        kill(proc)


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
            _process_exited(proc, {}, on_background)
        elif fds:
            _read(proc, {}, on_background)
    _expire([], [p for p in procs if p.background], None, now, on_background)


def _earliest(
    pending: list[Call], waiting_bg: list[PluginProcess], until: float | None
) -> float | None:
    deadlines = [c.deadline for c in pending if c.deadline is not None]
    for proc in waiting_bg:
        deadlines.extend(d for _, d, _ in proc.background.values() if d is not None)
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
        for hook, deadline, started in list(proc.background.values()):
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
                kill(proc)
                _fail_others(proc, pending, on_background, error)
                break


def _read(proc: PluginProcess, by_call: dict, on_background: BackgroundHandler) -> None:
    reader = proc.reader
    assert reader is not None
    try:
        frames = reader.feed()
    except EOFError:
        frames, broken = [], "eof"
    except wire.WireError as exc:
        frames, broken = [], str(exc)
    else:
        broken = ""
    for kind, codec, payload in frames:
        _dispatch(proc, kind, codec, payload, by_call, on_background)
        if proc.reader is not reader:
            return  # the dispatch ended the process
    if not broken and reader._eof:
        broken = "eof"
    if broken:
        _channel_broken(proc, broken, by_call, on_background)


def _dispatch(
    proc: PluginProcess,
    kind: int,
    codec: int,
    payload: bytearray,
    by_call: dict,
    on_background: BackgroundHandler,
) -> None:
    """Decode one reply and complete the call it answers."""
    try:
        message = wire.decode(codec, payload, trusted=proc.settings.trusted)
        call_id = message[0]
        if not isinstance(call_id, int) or isinstance(call_id, bool):
            raise ValueError("reply without a call id")
    except wire.UnsafeValue as exc:
        _refuse(proc, payload, exc, by_call, on_background)
        return
    except Exception as exc:  # noqa: BLE001 - any malformed payload
        reason = f"malformed reply ({type(exc).__name__}: {exc})"
        _channel_broken(proc, reason, by_call, on_background)
        return
    if kind == wire.RESULT and _is_result(message):
        _complete(proc, call_id, message, None, by_call, on_background)
    elif kind == wire.FAILURE:
        error = _failure_error(proc, _hook_of(proc, call_id, by_call), message)
        _complete(proc, call_id, None, error, by_call, on_background)
    else:
        reason = f"unexpected {wire.KIND_NAMES.get(kind)} message or wrong shape"
        _channel_broken(proc, reason, by_call, on_background)


def _is_result(message: Any) -> bool:
    """A RESULT is (call id, local or None, global or None, [(event, kwargs)])."""
    if not (
        isinstance(message, tuple)
        and len(message) == 4
        and (message[1] is None or isinstance(message[1], dict))
        and (message[2] is None or isinstance(message[2], dict))
        and isinstance(message[3], list)
    ):
        return False
    return all(
        isinstance(e, tuple)
        and len(e) == 2
        and isinstance(e[0], str)
        and isinstance(e[1], dict)
        for e in message[3]
    )


def _refuse(
    proc: PluginProcess,
    payload: bytearray,
    exc: wire.UnsafeValue,
    by_call: dict,
    on_background: BackgroundHandler,
) -> None:
    """An untrusted reply named a type outside the allow-list.

    The call it answers fails with UnsafeValueError; then the process is
    ended, because a plugin that sends such a value may have forged other
    frames too (its genuine reply would arrive unasked).
    """
    call_id = _peek_call_id(payload)
    if call_id is not None:
        hook = _hook_of(proc, call_id, by_call)
        error = UnsafeValueError(str(exc), ident=proc.ident, hook=hook)
        _complete(proc, call_id, None, error, by_call, on_background)
    reason = f"sent a value outside the allow-list: {exc}"
    _channel_broken(proc, reason, by_call, on_background)


def _peek_call_id(payload: bytearray) -> int | None:
    """Read the call id of a refused reply without building anything else.

    A reply is a tuple whose first item is the call id, so it is the first
    integer opcode after the protocol, frame and mark opcodes.
    """
    try:
        for opcode, arg, _ in pickletools.genops(bytes(payload)):
            if opcode.name in ("BININT", "BININT1", "BININT2", "LONG1"):
                return int(arg)  # type: ignore[arg-type]
            if opcode.name not in ("PROTO", "FRAME", "MARK"):
                return None
    except Exception:  # noqa: BLE001 - garbage is simply not a call id
        return None
    return None


def _hook_of(proc: PluginProcess, call_id: int, by_call: dict) -> str:
    call = by_call.get((id(proc), call_id))
    if call is not None:
        return call.hook
    entry = proc.background.get(call_id)
    return entry[0] if entry else "?"


def _failure_error(proc: PluginProcess, hook: str, message: Any) -> HookError:
    if not (isinstance(message, tuple) and len(message) == 5):
        return ProtocolError(
            "failure report of the wrong shape", ident=proc.ident, hook=hook
        )
    # Every field comes from the plugin: keep only values of the expected type.
    _, kind, text, tb, exitcode = message
    text = str(text)
    tb = tb if isinstance(tb, str) else None
    if kind == "exit":
        status = proc.exit_status(2.0)
        kill(proc)
        code = status if status is not None else _int_or_none(exitcode)
        return PluginCrashed(
            f"the hook called sys.exit: {describe_exit(code)}",
            ident=proc.ident,
            hook=hook,
            exitcode=code,
            remote_traceback=tb,
        )
    limit = kind[6:] if isinstance(kind, str) and kind.startswith("limit:") else ""
    if limit in _LIMITS:
        kill(proc)
        return ResourceLimitExceeded(
            f"{limit} exceeded: {text}",
            ident=proc.ident,
            hook=hook,
            limit=limit,
            remote_traceback=tb,
        )
    return HookError(text, ident=proc.ident, hook=hook, remote_traceback=tb)


_LIMITS = ("memory_limit_mb", "cpu_limit_s", "max_open_files")


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _complete(
    proc: PluginProcess,
    call_id: int,
    message: tuple | None,
    error: HookError | None,
    by_call: dict,
    on_background: BackgroundHandler,
) -> None:
    call = by_call.get((id(proc), call_id))
    if call is not None and not call.done:
        call.done = True
        call.elapsed = time.monotonic() - call.started
        call.error = error
        if message is not None:
            _, call.local, call.global_, call.nested = message
        return
    if call_id in proc.background:
        on_background(proc, call_id, message, error)
        return
    # Replies answer requests one for one; an unsolicited frame means the
    # channel is corrupted or forged.
    _channel_broken(
        proc,
        f"reply to call {call_id!r}, which was not made or was already answered",
        by_call,
        on_background,
    )


def _channel_broken(
    proc: PluginProcess, reason: str, by_call: dict, on_background: BackgroundHandler
) -> None:
    """The reply pipe closed or carried garbage: end the process, fail its calls."""
    error_cls: type[HookError]
    if reason == "exit":
        status = proc.exit_status(2.0)
        kill(proc)
        error_cls, text = PluginCrashed, describe_exit(status)
    elif reason == "eof":
        status = proc.exit_status(1.0)
        if status is None:
            kill(proc)
            error_cls, text, status = (
                ProtocolError,
                "the plugin closed its reply pipe",
                None,
            )
        else:
            kill(proc)
            error_cls, text = PluginCrashed, describe_exit(status)
    else:
        status = kill(proc)
        error_cls, text = ProtocolError, reason
    pending = [c for (pid, _), c in by_call.items() if pid == id(proc) and not c.done]
    for call in pending:
        call.error = _crash_error(proc, error_cls, text, call.hook, status)
        call.done = True
        call.elapsed = time.monotonic() - call.started
    _fail_background(proc, on_background, error_cls, text, status)


def _crash_error(
    proc: PluginProcess, error_cls: type, text: str, hook: str, status: int | None
) -> HookError:
    if error_cls is PluginCrashed:
        signum = -status if status is not None and status < 0 else None
        code = status if status is not None and status >= 0 else None
        if signum == 24 and proc.settings.cpu_limit_s:  # SIGXCPU
            return ResourceLimitExceeded(
                text, ident=proc.ident, hook=hook, limit="cpu_limit_s", signal=signum
            )
        return PluginCrashed(
            text, ident=proc.ident, hook=hook, exitcode=code, signal=signum
        )
    return error_cls(text, ident=proc.ident, hook=hook)


def _fail_background(
    proc: PluginProcess,
    on_background: BackgroundHandler,
    error_cls: type,
    text: str,
    status: int | None,
) -> None:
    for call_id, (hook, _, _) in list(proc.background.items()):
        on_background(
            proc, call_id, None, _crash_error(proc, error_cls, text, hook, status)
        )


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
    for call_id, (hook, _, _) in list(proc.background.items()):
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
    kill(call.proc)
    call.done = True
    call.elapsed = time.monotonic() - call.started
    call.error = HookTimeout(
        f"no reply within the timeout of {call.timeout} s; the process was killed",
        ident=call.proc.ident,
        hook=call.hook,
        timeout=call.timeout,
    )


def _fail_dead(call: Call) -> None:
    status = kill(call.proc)
    call.done = True
    call.error = _crash_error(
        call.proc,
        PluginCrashed,
        f"the process was gone when the call was sent: {describe_exit(status)}",
        call.hook,
        status,
    )


def kill(proc: PluginProcess) -> int | None:
    """Kill a plugin process in flight; it restarts before its next hook."""
    if proc.process is None:
        return None
    status = proc.kill()
    if proc.state != "disabled":
        proc.state = "restarting"
    return status
