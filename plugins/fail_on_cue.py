"""Fail on cue: a plugin that breaks in a chosen way at chosen calls.

For demos and fault tests. It binds a hook to every event named in
``fail_on`` (and ``hooks``); every ``every``-th call of a ``fail_on`` event
fails the way ``how`` says, every other call succeeds and returns nothing::

    plugins:
      flaky:
        plugin: plugins/fail_on_cue.py:FailOnCue
        fail_on: finish_test
        every: 3
        how: segfault

Configuration keys (read from ``self.data``):

``fail_on`` (required)
    An event name or a list of event names whose calls are counted.
``every`` (default ``1``)
    Fail on calls ``every``, ``2 * every``, ... of the ``fail_on`` events
    (counted together). The count lives in the plugin process, so it starts
    again when the process is restarted; since the modes that restart the
    process fail on the call that ends it, the failures still fall on the
    same calls of the whole run.
``how`` (default ``"raise"``)
    ``raise``: raise ``RuntimeError(message)``.
    ``exit``: leave at once with ``os._exit(exit_code)``.
    ``signal``: send ``signal`` to its own process.
    ``segfault``: read address 0, a real segmentation fault.
    ``hang``: block forever (for ``timeout`` to end).
``message`` (default ``"failing on cue"``)
    The exception text of ``raise``.
``exit_code`` (default ``3``)
    The status of ``exit``.
``signal`` (default ``"SIGKILL"``)
    The signal of ``signal``: a name (``SIGTERM``, ``TERM``) or a number.
``ignore_sigterm`` (default ``false``)
    With ``hang``: ignore SIGTERM first, so only SIGKILL ends the process.
``hooks`` (default ``[]``)
    More events to bind a hook to; their calls always succeed and are not
    counted.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
from collections.abc import Callable

from rigger_sandbox import RiggerBasePlugin

HOW = ("raise", "exit", "signal", "segfault", "hang")


class FailOnCue(RiggerBasePlugin):
    """Raise, exit, kill itself, segfault or hang on every n-th cued call."""

    def plugin_initialize(self) -> None:
        self.fail_on = _event_names(self, "fail_on", required=True)
        passive = _event_names(self, "hooks", required=False)
        self.every = _positive_int(self, "every", 1)
        self.how = self.data.get("how", "raise")
        if self.how not in HOW:
            raise ValueError(
                f"plugin instance {self.ident!r}: key 'how' must be one of "
                f"{', '.join(HOW)}, got {self.how!r}"
            )
        self.message = str(self.data.get("message", "failing on cue"))
        self.exit_code = _int(self, "exit_code", 3)
        self.signum = _signal_number(self, self.data.get("signal", "SIGKILL"))
        self.ignore_sigterm = bool(self.data.get("ignore_sigterm", False))
        self.calls = 0

        for event in self.fail_on:
            self.register_plugin_hook(event, self._cued_hook())
        for event in passive:
            if event not in self.fail_on:
                self.register_plugin_hook(event, _passive_hook)

    def _cued_hook(self) -> Callable[[], None]:
        # A hook without parameters is sent no arguments at all.
        def cued() -> None:
            self.calls += 1
            if self.calls % self.every == 0:
                self.fail()

        return cued

    def fail(self) -> None:
        """Fail now, the configured way."""
        if self.how == "raise":
            raise RuntimeError(f"{self.message} (call {self.calls})")
        if self.how == "exit":
            os._exit(self.exit_code)
        if self.how == "signal":
            os.kill(os.getpid(), self.signum)
            # A caught or ignored signal lands here; waiting keeps the failure
            # visible as a hang instead of a silent success.
            _block_forever()
        if self.how == "segfault":
            ctypes.string_at(0)
        if self.how == "hang":
            if self.ignore_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _block_forever()


def _passive_hook() -> None:
    return None


def _block_forever() -> None:
    threading.Event().wait()


def _event_names(plugin: RiggerBasePlugin, key: str, *, required: bool) -> list[str]:
    value = plugin.data.get(key)
    if value is None and not required:
        return []
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(name, str) and name for name in value)
    ):
        raise ValueError(
            f"plugin instance {plugin.ident!r}: key {key!r} must be an event name "
            f"or a non-empty list of event names, got {value!r}"
        )
    return value


def _int(plugin: RiggerBasePlugin, key: str, default: int) -> int:
    value = plugin.data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(
            f"plugin instance {plugin.ident!r}: key {key!r} must be an integer, "
            f"got {value!r}"
        )
    return value


def _positive_int(plugin: RiggerBasePlugin, key: str, default: int) -> int:
    value = _int(plugin, key, default)
    if value < 1:
        raise ValueError(
            f"plugin instance {plugin.ident!r}: key {key!r} must be at least 1, "
            f"got {value!r}"
        )
    return value


def _signal_number(plugin: RiggerBasePlugin, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if isinstance(getattr(signal, name, None), signal.Signals):
            return int(getattr(signal, name))
    raise ValueError(
        f"plugin instance {plugin.ident!r}: key 'signal' must be a signal name "
        f"such as SIGKILL or a number, got {value!r}"
    )
