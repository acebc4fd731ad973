"""Exceptions raised by rigger_sandbox; every one derives from RiggerError."""

from __future__ import annotations

import signal


class RiggerError(Exception):
    """Base class of every error rigger_sandbox raises."""


class ConfigError(RiggerError, ValueError):
    """The configuration is unreadable or invalid.

    The message names the file (when there is one), the key and what was
    expected.
    """

    def __init__(
        self, message: str, *, source: str | None = None, key: str | None = None
    ) -> None:
        self.source = source
        self.key = key
        where = []
        if source:
            where.append(source)
        if key:
            where.append(f"key {key!r}")
        prefix = f"{': '.join(where)}: " if where else ""
        super().__init__(prefix + message)


class HookError(RiggerError):
    """A hook or callback failed for one event.

    Attributes:
        ident: the plugin instance, or ``None`` for a parent-side callback.
        hook: the event (hook) name.
        remote_traceback: the traceback text from the plugin process, or
            ``None`` when there is none (a crash, a timeout).
        kind: the failure class used in statistics: ``"exception"``,
            ``"crash"``, ``"timeout"``, ``"limit"`` or ``"protocol"``.
    """

    kind = "exception"

    def __init__(
        self,
        message: str,
        *,
        ident: str | None,
        hook: str,
        remote_traceback: str | None = None,
    ) -> None:
        self.ident = ident
        self.hook = hook
        self.remote_traceback = remote_traceback
        self.message = message
        who = f"plugin {ident!r}" if ident is not None else "callback"
        text = f"{who}, hook {hook!r}: {message}"
        if remote_traceback:
            text += "\n\nPlugin-side traceback:\n" + remote_traceback.rstrip()
        super().__init__(text)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild_hook_error, (type(self), self.__dict__.copy()))


def _rebuild_hook_error(cls: type[HookError], state: dict) -> HookError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, state.get("message", ""))
    return error


class PluginCrashed(HookError):
    """The plugin process died while it ran a hook (or could not start).

    ``exitcode`` is the process exit status when it exited, ``signal`` the
    signal number when a signal killed it (either may be ``None``).
    """

    kind = "crash"

    def __init__(
        self,
        message: str,
        *,
        ident: str | None,
        hook: str,
        exitcode: int | None = None,
        signal: int | None = None,
        remote_traceback: str | None = None,
    ) -> None:
        self.exitcode = exitcode
        self.signal = signal
        super().__init__(
            message, ident=ident, hook=hook, remote_traceback=remote_traceback
        )

    @property
    def signal_name(self) -> str | None:
        return signal_name(self.signal) if self.signal is not None else None


class HookTimeout(HookError, TimeoutError):
    """The hook ran past its timeout; its process was killed."""

    kind = "timeout"

    def __init__(
        self,
        message: str,
        *,
        ident: str | None,
        hook: str,
        timeout: float | None = None,
    ) -> None:
        self.timeout = timeout
        super().__init__(message, ident=ident, hook=hook)


class ResourceLimitExceeded(PluginCrashed):
    """The plugin went past one of its resource limits (memory, CPU, files).

    ``limit`` names the configuration key that was exceeded.
    """

    kind = "limit"

    def __init__(
        self,
        message: str,
        *,
        ident: str | None,
        hook: str,
        limit: str,
        exitcode: int | None = None,
        signal: int | None = None,
        remote_traceback: str | None = None,
    ) -> None:
        self.limit = limit
        super().__init__(
            message,
            ident=ident,
            hook=hook,
            exitcode=exitcode,
            signal=signal,
            remote_traceback=remote_traceback,
        )


class ProtocolError(HookError):
    """A plugin sent bytes that break the protocol, or a message too large.

    The channel can no longer be trusted: the plugin process is killed and
    restarted before its next hook.
    """

    kind = "protocol"


class UnsafeValueError(HookError):
    """An untrusted plugin sent a value outside the allow-list of types."""

    kind = "exception"


class NestedEventError(RiggerError):
    """Nested events went deeper, or queued more, than the configured bound."""


class ArgumentError(RiggerError, TypeError):
    """An argument cannot be sent to a plugin process (pickle and dill refuse it)."""


class RiggerStateError(RiggerError, RuntimeError):
    """The Rigger is not in a state that allows the call (not started, shut down)."""


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
