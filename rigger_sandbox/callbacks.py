"""Pre- and post-callbacks: the parent's own code around a hook, by event and name."""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Callable
from typing import Any

from .errors import HookError, RiggerError
from .namespaces import BadReturnValue, CallSpec, MissingArguments, split_result

CTYPES = ("pre", "post")


class Callback:
    """A registered callback and what its signature asks for."""

    __slots__ = ("func", "spec")

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.spec = CallSpec.of(func)


class CallbackTable:
    """Callbacks by kind ('pre' or 'post'), event and name, in registration order.

    Registration copies on write: an event in progress keeps the callbacks it
    started with, whatever is registered meanwhile.
    """

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Callback]]] = {
            ctype: {} for ctype in CTYPES
        }
        self._anonymous = itertools.count(1)

    def register(
        self, hook: str, ctype: str, func: Callable[..., Any] | None, name: str | None
    ) -> str:
        table = self._table(ctype)
        if not isinstance(hook, str) or not hook:
            raise RiggerError(f"hook name must be a non-empty string, got {hook!r}")
        if not callable(func):
            raise RiggerError(f"callback for {hook!r} must be callable, got {func!r}")
        if name is None:
            qualname = getattr(func, "__qualname__", "callback")
            name = f"{qualname}#{next(self._anonymous)}"
        entries = dict(table.get(hook, {}))
        entries[name] = Callback(func)
        table[hook] = entries
        return name

    def unregister(self, hook: str, ctype: str, name: str) -> None:
        table = self._table(ctype)
        entries = dict(table.get(hook, {}))
        if name not in entries:
            raise RiggerError(
                f"no {ctype}-callback named {name!r} for hook {hook!r}; "
                f"registered: {sorted(entries)}"
            )
        del entries[name]
        table[hook] = entries

    def get(self, ctype: str, hook: str) -> dict[str, Callback] | None:
        return self.tables[ctype].get(hook)

    def _table(self, ctype: str) -> dict[str, dict[str, Callback]]:
        try:
            return self.tables[ctype]
        except (KeyError, TypeError):
            raise RiggerError(
                f"callback type must be 'pre' or 'post', got {ctype!r}"
            ) from None


def run_callbacks(
    hook: str, entries: dict[str, Callback], local: dict, global_: dict
) -> tuple[list, list[HookError]]:
    """Run one phase's callbacks; return their (local, global) updates and errors.

    Every callback sees the same input; a failing one contributes no update.
    """
    updates = []
    errors = []
    for callback in entries.values():
        try:
            kwargs = callback.spec.select(local, global_)
            result = callback.func(**kwargs)
            updates.append(split_result(callback.spec.name, result))
        except Exception as exc:  # noqa: BLE001 - squashed or raised by the caller
            errors.append(_callback_error(hook, callback, exc))
    return updates, errors


def _callback_error(hook: str, callback: Callback, exc: Exception) -> HookError:
    if isinstance(exc, (MissingArguments, BadReturnValue)):
        text = str(exc)
    else:
        text = f"callback {callback.spec.name} raised {type(exc).__name__}: {exc}"
    error = HookError(
        text,
        ident=None,
        hook=hook,
        remote_traceback="".join(traceback.format_exception(exc)),
    )
    error.__cause__ = exc
    return error
