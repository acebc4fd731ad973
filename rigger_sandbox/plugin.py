"""RiggerBasePlugin: the class plugins derive from; it lives in the plugin process."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .errors import NestedEventError, RiggerError
from .namespaces import CallSpec

INHERIT = "inherit"


class HookEntry:
    """One registered hook of a plugin: the function and what it asks for."""

    __slots__ = ("func", "spec", "bg", "timeout")

    def __init__(
        self, func: Callable[..., Any], bg: bool, timeout: float | None | str
    ) -> None:
        self.func = func
        self.spec = CallSpec.of(func)
        self.bg = bg
        self.timeout = timeout


class RiggerBasePlugin:
    """Base class of plugins.

    Subclasses register their hooks in :meth:`plugin_initialize`.  An instance
    runs in its own process; ``self.ident`` is its instance name in the
    configuration and ``self.data`` its instance's configuration mapping.
    """

    def __init__(self, ident: str, data: dict, _nested: Any = None) -> None:
        self.callbacks: dict[str, HookEntry] = {}
        self.ident = ident
        self.data = data
        self.configured = False
        self._nested = _nested
        self.plugin_initialize()

    def plugin_initialize(self) -> None:
        """Register hooks here with :meth:`register_plugin_hook`."""

    def configure(self, *args: Any, **kwargs: Any) -> None:
        """Receive the arguments of ``Rigger.configure_plugin``; override it."""

    @staticmethod
    def check_configured(func: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate a hook so that it does nothing until the plugin is configured."""

        @functools.wraps(func)
        def inner(self: RiggerBasePlugin, *args: Any, **kwargs: Any) -> Any:
            if self.configured:
                return func(self, *args, **kwargs)
            return None

        return inner

    def register_plugin_hook(
        self,
        event: str,
        callback: Callable[..., Any] | None = None,
        bg: bool = False,
        timeout: float | None | str = INHERIT,
    ) -> None:
        """Bind ``callback`` (default: the method named like ``event``) to ``event``.

        Args:
            event: the event name.
            callback: the function to call; it receives the keyword arguments
                its signature names.
            bg: run it in the background: the event does not wait for it.
            timeout: seconds this hook may run (``None``: no limit); by default
                the instance's ``timeout``.
        """
        if not isinstance(event, str) or not event:
            raise RiggerError(
                f"plugin {self.ident!r}: event names must be non-empty "
                f"strings, got {event!r}"
            )
        if event in self.callbacks:
            raise RiggerError(
                f"plugin {self.ident!r} already has a hook for event "
                f"{event!r} (registered twice): one function per event per plugin"
            )
        if callback is None:
            callback = getattr(self, event, None)
            if callback is None:
                raise RiggerError(
                    f"plugin {self.ident!r} has no method {event!r} to "
                    "bind; pass callback="
                )
        if not callable(callback):
            raise RiggerError(
                f"plugin {self.ident!r}: the hook for {event!r} must be "
                f"callable, got {callback!r}"
            )
        if (
            timeout != INHERIT
            and timeout is not None
            and (
                isinstance(timeout, bool)
                or not isinstance(timeout, (int, float))
                or timeout <= 0
            )
        ):
            raise RiggerError(
                f"plugin {self.ident!r}: timeout for {event!r} must be "
                f"a positive number or None, got {timeout!r}"
            )
        self.callbacks[event] = HookEntry(callback, bool(bg), timeout)

    def fire_hook(self, hook_name: str, **kwargs: Any) -> None:
        """Ask the parent to fire ``hook_name`` after the current event.

        A nested event cannot return a result to the plugin.
        """
        kwargs.pop("grab_result", None)
        if self._nested is None:
            raise NestedEventError(
                f"plugin {self.ident!r}: fire_hook is only available in a plugin "
                "process while it runs a hook"
            )
        self._nested(hook_name, kwargs)
