"""The queue of nested events of one top-level event, bounded in depth and number."""

from __future__ import annotations

import collections

from .errors import NestedEventError, RiggerError


class NestedQueue:
    """Events fired by hooks during one ``fire_hook``, run in request order."""

    def __init__(self, top: str, max_depth: int, max_events: int) -> None:
        self.top = top
        self.max_depth = max_depth
        self.max_events = max_events
        self.items: collections.deque[tuple[str, dict, int]] = collections.deque()
        self.count = 0
        self.overflowed = False

    def add(self, event: str, kwargs: dict, depth: int) -> RiggerError | None:
        """Queue a nested event, or return the error that refuses it."""
        if depth > self.max_depth:
            return NestedEventError(
                f"nested event {event!r} would be {depth} levels deep, more than "
                f"max_nested_depth ({self.max_depth})"
            )
        if self.count >= self.max_events:
            if self.overflowed:
                return None  # reported once per top-level event
            self.overflowed = True
            return NestedEventError(
                f"event {self.top!r} queued more than max_nested_events "
                f"({self.max_events}) nested events; the rest were dropped"
            )
        self.count += 1
        self.items.append((event, kwargs, depth))
        return None
