"""Namespaces: the deep merge, argument selection by signature, result checks."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def recursive_update(orig: dict, updates: Mapping) -> dict:
    """Merge ``updates`` into ``orig`` in place and return ``orig``.

    Mappings merge key by key at every depth; a list updating a list extends
    it; anything else replaces the old value.
    """
    for key, value in updates.items():
        if isinstance(value, Mapping):
            current = orig.get(key)
            if isinstance(current, dict):
                recursive_update(current, value)
            else:
                orig[key] = recursive_update({}, value)
        elif isinstance(value, list):
            current = orig.get(key)
            if isinstance(current, list):
                current.extend(value)
            else:
                # A copy, so that extending it later never changes the update.
                orig[key] = list(value)
        else:
            orig[key] = value
    return orig


MAX_DEPTH = 100


def check_depth(updates: Mapping | None, limit: int = MAX_DEPTH) -> None:
    """Refuse updates whose mappings nest deeper than ``limit``.

    ``recursive_update`` recurses once per level of nested mappings, so a
    mapping that contains itself, or one nested thousands deep, would exhaust
    the stack half-way through a merge.  Checked level by level, each
    distinct mapping once per level, so shared sub-mappings cost no more
    than their number.

    Raises:
        ValueError: saying how deep is too deep.
    """
    level: list[Mapping] = [updates] if updates else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            raise ValueError(
                f"mappings nest more than {limit} levels deep (or contain themselves)"
            )
        below = {}
        for mapping in level:
            for value in mapping.values():
                if isinstance(value, Mapping):
                    below[id(value)] = value
        level = list(below.values())


@dataclass(frozen=True, slots=True)
class CallSpec:
    """What a callback or hook asks for, computed once at registration.

    Attributes:
        name: the function's qualified name, for error messages.
        params: the keyword names it may receive, in signature order.
        required: the names without a default.
        varkw: whether it takes ``**kwargs`` (it then receives everything).
    """

    name: str
    params: tuple[str, ...]
    required: frozenset[str]
    varkw: bool

    @classmethod
    def of(cls, func: Callable[..., Any]) -> CallSpec:
        """Inspect ``func`` (through decorators that set ``__wrapped__``)."""
        signature = inspect.signature(func)
        params: list[str] = []
        required: set[str] = set()
        varkw = False
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                varkw = True
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            elif param.kind is inspect.Parameter.POSITIONAL_ONLY:
                if param.default is inspect.Parameter.empty:
                    raise TypeError(
                        f"{_qualname(func)} has a positional-only parameter "
                        f"{param.name!r} without default; hooks and callbacks "
                        "receive keyword arguments only"
                    )
            else:
                params.append(param.name)
                if param.default is inspect.Parameter.empty:
                    required.add(param.name)
        return cls(_qualname(func), tuple(params), frozenset(required), varkw)

    def select(self, local: Mapping, global_: Mapping) -> dict:
        """The keyword arguments for one call: local overrides global.

        Raises:
            MissingArguments: a parameter without default is in neither
                namespace.
        """
        if self.varkw:
            selected = dict(global_)
            selected.update(local)
            return selected
        selected = {}
        for name in self.params:
            if name in local:
                selected[name] = local[name]
            elif name in global_:
                selected[name] = global_[name]
        if len(selected) < len(self.required):
            missing = sorted(self.required.difference(selected))
            raise MissingArguments(self.name, missing)
        return selected


class MissingArguments(TypeError):
    """A hook or callback needs names that neither namespace holds."""

    def __init__(self, func_name: str, missing: list[str]) -> None:
        self.func_name = func_name
        self.missing = missing
        super().__init__(
            f"{func_name} is missing required arguments {missing}: "
            "neither the local nor the global namespace holds them"
        )


class BadReturnValue(TypeError):
    """A hook or callback returned something other than None or a pair."""


def split_result(func_name: str, result: object) -> tuple[dict | None, dict | None]:
    """Check a returned value and split it into (local, global) updates."""
    if result is None:
        return None, None
    if isinstance(result, tuple) and len(result) == 2:
        local, global_ = result
        if (local is None or isinstance(local, Mapping)) and (
            global_ is None or isinstance(global_, Mapping)
        ):
            return local, global_  # type: ignore[return-value]
    raise BadReturnValue(
        f"{func_name} returned {_describe(result)}; expected None or a pair "
        "(local_updates, global_updates) of mappings or None"
    )


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 200:
        text = text[:200] + "..."
    return f"a {type(value).__name__} ({text})"


def _qualname(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return name or repr(func)
