"""Events files for the command line: one JSON object per line, checked whole."""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import dataclass
from typing import Any

from . import Rigger

EVENT_EXAMPLE = '{"hook": "start_test", "kwargs": {"test_name": "t1"}}'


class UsageError(Exception):
    """Bad input on the command line or in a file it names (exit status 2)."""


@dataclass(frozen=True)
class Event:
    """One line of an events file."""

    hook: str
    kwargs: dict[str, Any]
    line: int


def load_events(path: str) -> list[Event]:
    """Read and check every line of an events file before anything starts."""
    try:
        if path == "-":
            lines = sys.stdin.buffer.read().splitlines()
        else:
            with open(path, "rb") as stream:
                lines = stream.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read events file '{path}': {exc.strerror}") from exc
    name = "<stdin>" if path == "-" else path
    events = []
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            events.append(parse_event(raw, name, number))
    return events


def parse_event(raw: bytes, name: str, number: int) -> Event:
    """One events line as an Event, or a UsageError naming file and line."""
    where = f"{name}:{number}"
    expected = f"expected one JSON object per line such as {EVENT_EXAMPLE}"
    try:
        item = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text ({exc.reason}); {expected}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: invalid JSON ({exc.msg} at column {exc.colno}); {expected}"
        ) from exc
    if not isinstance(item, dict):
        raise UsageError(f"{where}: {expected}, got {json_type(item)}")
    unknown = sorted(set(item) - {"hook", "kwargs"})
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {unknown}; expected only 'hook' "
            "and optionally 'kwargs'"
        )
    if "hook" not in item:
        raise UsageError(f"{where}: missing 'hook' (the event name); {expected}")
    hook = item["hook"]
    if not isinstance(hook, str) or not hook:
        raise UsageError(
            f"{where}: 'hook' must be a non-empty string (the event "
            f"name), got {json_type(hook)} {json.dumps(hook)}"
        )
    kwargs = item.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise UsageError(
            f"{where}: 'kwargs' must be an object of keyword "
            f"arguments, got {json_type(kwargs)}"
        )
    reserved = sorted(set(kwargs) & fire_hook_parameters())
    if reserved:
        raise UsageError(
            f"{where}: 'kwargs' may not contain {reserved}: "
            "fire_hook takes those names itself"
        )
    return Event(hook, kwargs, number)


def fire_hook_parameters() -> set[str]:
    """Names ``fire_hook`` binds itself, so an event cannot pass them as kwargs."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(Rigger.fire_hook).parameters.values()
    return {p.name for p in parameters if p.kind in named and p.name != "self"}


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
