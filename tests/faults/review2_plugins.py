"""Plugins for the regression tests of the second review (background paths)."""

from __future__ import annotations

import os
import pickle
import sys
import threading
import time
from pathlib import Path

from rigger_sandbox import RiggerBasePlugin

BLOCK_S = 60.0


def _current_call_id() -> int:
    frame = sys._getframe(1)
    while frame is not None and "call_id" not in frame.f_locals:
        frame = frame.f_back
    assert frame is not None
    return frame.f_locals["call_id"]


def _wait_for(path: Path, limit: float = BLOCK_S) -> None:
    """Block until ``path`` exists (bounded), like a hook that never finishes."""
    deadline = time.monotonic() + limit
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


class TwoReplies(RiggerBasePlugin):
    """``big`` answers with 200 kB; ``small`` answers, then its process exits."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("big", self.big, bg=True)
        self.register_plugin_hook("small", self.small, bg=True)

    def big(self) -> tuple[None, dict]:
        return None, {"big": "x" * 200_000}

    def small(self) -> tuple[None, dict]:
        threading.Timer(0.2, os._exit, (0,)).start()
        return None, {"small": True}


class Ticker(RiggerBasePlugin):
    """A background hook that fires its own event again, without end."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("tick", self.tick, bg=True)

    def tick(self, n: int = 0) -> tuple[None, dict]:
        self.fire_hook("tick", n=n + 1)
        return None, {"ticks": [n]}


class SlowBackground(RiggerBasePlugin):
    """``slow_bg`` blocks until a file exists; ``fg`` queues behind it."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("slow_bg", self.slow_bg, bg=True)
        self.register_plugin_hook("fg", self.fg)

    def slow_bg(self, release: str) -> tuple[None, dict]:
        _wait_for(Path(release))
        return None, {"bg_done": True}

    def fg(self) -> tuple[None, dict]:
        return None, {"fg_done": True}


class AnswersTwice(RiggerBasePlugin):
    """Writes two answers to its background call in one write, then blocks."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("bg", self.twice, bg=True)

    def twice(self, tag: str) -> None:
        from rigger_sandbox import wire
        from rigger_sandbox._child import REP_FD

        reply = (_current_call_id(), None, {tag: "merged"}, [])
        payload = pickle.dumps(reply, wire.PICKLE_PROTOCOL)
        frame = wire.HEADER.pack(wire.RESULT, wire.CODEC_PICKLE, len(payload))
        os.write(REP_FD, (frame + payload) * 2)
        time.sleep(BLOCK_S)


class FiresAHang(RiggerBasePlugin):
    """A background hook fires ``hang``, a hook that never returns."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("start", self.start, bg=True)
        self.register_plugin_hook("hang", self.hang)

    def start(self) -> None:
        self.fire_hook("hang")

    def hang(self) -> None:
        time.sleep(3600)
