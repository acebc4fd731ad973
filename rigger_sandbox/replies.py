"""Replies from plugin processes: decoding, checking, and what a broken channel means.

Everything here runs in the parent on bytes a plugin sent.  A reply is decoded
with the allow-list decoder unless the instance is trusted, its shape is
checked, and it completes the call it answers.  Anything else (a reply nobody
asked for, garbage, a closed pipe, a process that exited) ends the process and
fails every call in flight to it, so the plugin restarts clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import wire
from .errors import (
    HookError,
    PluginCrashed,
    ProtocolError,
    ResourceLimitExceeded,
    UnsafeValueError,
)
from .namespaces import check_depth
from .process import PluginProcess, describe_exit

if TYPE_CHECKING:
    from .calls import Call

BackgroundHandler = Callable[[PluginProcess, int, Any, HookError | None], None]
"""Called with (process, call id, reply or None, error or None) of a background call."""

CallTable = dict[tuple[int, int], "Call"]


def process_exited(
    proc: PluginProcess, by_call: dict, on_background: BackgroundHandler
) -> None:
    """The process is gone: take the replies it sent, fail the calls it did not."""
    reader = proc.reader
    # Read to the end: several replies may wait in the pipe behind each other.
    while proc.reader is reader and read(proc, by_call, on_background):
        pass
    if proc.reader is not None and (
        proc.background
        or any(pid == id(proc) and not c.done for (pid, _), c in by_call.items())
    ):
        channel_broken(proc, "exit", by_call, on_background)
    elif proc.reader is not None:
        proc.kill_for_restart()


def read(proc: PluginProcess, by_call: dict, on_background: BackgroundHandler) -> bool:
    """Read and handle the replies that have arrived from ``proc``.

    Returns whether any reply was handled.
    """
    reader = proc.reader
    assert reader is not None
    try:
        frames = reader.feed()
    except EOFError:
        channel_broken(proc, "eof", by_call, on_background)
        return False
    except wire.WireError as exc:
        channel_broken(proc, str(exc), by_call, on_background)
        return False
    if len(frames) > 1 and _answered_twice(proc, frames, by_call, on_background):
        return True
    for kind, codec, payload in frames:
        _dispatch(proc, kind, codec, payload, by_call, on_background)
        if proc.reader is not reader:
            break  # the dispatch ended the process
    return bool(frames)


def _answered_twice(
    proc: PluginProcess, frames: list, by_call: dict, on_background: BackgroundHandler
) -> bool:
    """Fail the calls answered twice in one batch before either answer is used.

    A background call's answer merges as soon as it is handled, so a
    duplicate must be caught before the first copy is.
    """
    ids = [wire.peek_call_id(payload) for _, _, payload in frames]
    twice = {i for i in ids if i is not None and ids.count(i) > 1}
    if not twice:
        return False
    for call_id in sorted(twice):
        hook = _hook_of(proc, call_id, by_call)
        error = ProtocolError(
            "the plugin answered this call twice", ident=proc.ident, hook=hook
        )
        _complete(proc, call_id, None, error, by_call, on_background)
    channel_broken(proc, "answered a call twice", by_call, on_background)
    return True


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
        channel_broken(proc, reason, by_call, on_background)
        return
    if kind == wire.RESULT and _is_result(message):
        try:
            # The merge recurses into mappings: refuse a cycle or a depth
            # that would exhaust the parent's stack before merging anything.
            check_depth(message[1])
            check_depth(message[2])
        except ValueError as exc:
            error = HookError(
                f"the hook returned updates the parent cannot merge: {exc}",
                ident=proc.ident,
                hook=_hook_of(proc, call_id, by_call),
            )
            _complete(proc, call_id, None, error, by_call, on_background)
            return
        _complete(proc, call_id, message, None, by_call, on_background)
    elif kind == wire.FAILURE:
        error = _failure_error(proc, _hook_of(proc, call_id, by_call), message)
        _complete(proc, call_id, None, error, by_call, on_background)
    else:
        reason = f"unexpected {wire.KIND_NAMES.get(kind)} message or wrong shape"
        channel_broken(proc, reason, by_call, on_background)


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
    call_id = wire.peek_call_id(payload)
    if call_id is not None:
        hook = _hook_of(proc, call_id, by_call)
        error = UnsafeValueError(str(exc), ident=proc.ident, hook=hook)
        _complete(proc, call_id, None, error, by_call, on_background)
    reason = f"sent a value outside the allow-list: {exc}"
    channel_broken(proc, reason, by_call, on_background)


def _hook_of(proc: PluginProcess, call_id: int, by_call: dict) -> str:
    call = by_call.get((id(proc), call_id))
    if call is not None:
        return call.hook
    entry = proc.background.get(call_id)
    return entry.hook if entry else "?"


def _failure_error(proc: PluginProcess, hook: str, message: Any) -> HookError:
    if not (isinstance(message, tuple) and len(message) == 5):
        return ProtocolError(
            "failure report of the wrong shape", ident=proc.ident, hook=hook
        )
    # Every field comes from the plugin: keep only values of the expected type.
    _, kind, text, tb, exitcode = message
    text = text if isinstance(text, str) else f"(a {type(text).__name__})"
    tb = tb if isinstance(tb, str) else None
    if kind == "exit":
        status = proc.exit_status(2.0)
        proc.kill_for_restart()
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
        proc.kill_for_restart()
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
    if call is not None:
        # Answered twice before anyone used the first answer: neither can be
        # trusted, so the call fails and nothing of it merges.
        call.local = call.global_ = None
        call.nested = []
        call.error = ProtocolError(
            "the plugin answered this call twice", ident=proc.ident, hook=call.hook
        )
    if call_id in proc.background:
        on_background(proc, call_id, message, error)
        return
    # Replies answer requests one for one; an unsolicited frame means the
    # channel is corrupted or forged.
    channel_broken(
        proc,
        f"reply to call {call_id!r}, which was not made or was already answered",
        by_call,
        on_background,
    )


def channel_broken(
    proc: PluginProcess, reason: str, by_call: dict, on_background: BackgroundHandler
) -> None:
    """The reply pipe closed or carried garbage: end the process, fail its calls."""
    error_cls: type[HookError]
    if reason == "exit":
        status = proc.exit_status(2.0)
        proc.kill_for_restart()
        error_cls, text = PluginCrashed, describe_exit(status)
    elif reason == "eof":
        status = proc.exit_status(1.0)
        if status is None:
            proc.kill_for_restart()
            error_cls, text, status = (
                ProtocolError,
                "the plugin closed its reply pipe",
                None,
            )
        else:
            proc.kill_for_restart()
            error_cls, text = PluginCrashed, describe_exit(status)
    else:
        status = proc.kill_for_restart()
        error_cls, text = ProtocolError, reason
    pending = [c for (pid, _), c in by_call.items() if pid == id(proc) and not c.done]
    for call in pending:
        call.error = crash_error(proc, error_cls, text, call.hook, status)
        call.done = True
        call.elapsed = time.monotonic() - call.started
    fail_background(proc, on_background, error_cls, text, status)


def crash_error(
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


def fail_background(
    proc: PluginProcess,
    on_background: BackgroundHandler,
    error_cls: type,
    text: str,
    status: int | None,
) -> None:
    for call_id, entry in list(proc.background.items()):
        error = crash_error(proc, error_cls, text, entry.hook, status)
        on_background(proc, call_id, None, error)
