"""Plugin classes shared by the test suite; importable by plugin processes.

Plugins that write files take the directory from their instance data key
``out``. Waits are on files with a deadline, never on the clock alone.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rigger_sandbox import RiggerBasePlugin

RENDEZVOUS_DEADLINE_S = 20.0


def wait_for_file(path: str | os.PathLike[str], deadline_s: float) -> None:
    """Block until ``path`` exists; raise TimeoutError after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {deadline_s}s")
        time.sleep(0.005)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line with a single write so concurrent writers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    path = Path(path)
    return path.read_text().splitlines() if path.exists() else []


class Echo(RiggerBasePlugin):
    """Answers ``ping`` with its ident, pid and module, as global updates."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("ping")

    def ping(self) -> tuple[None, dict[str, Any]]:
        return None, {
            "pinged": {self.ident: os.getpid()},
            "module": type(self).__module__,
        }


class Introspect(RiggerBasePlugin):
    """Reports what it sees of itself: ident, data, pid, configure state."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("whoami")
        self.register_plugin_hook("configured_only", self.configured_only)
        self.configure_args: Any = None
        self.configure_pid: int | None = None

    def configure(self, *args: Any, **kwargs: Any) -> None:
        self.configure_args = [list(args), kwargs]
        self.configure_pid = os.getpid()

    def whoami(self) -> tuple[None, dict[str, Any]]:
        return None, {
            self.ident: {
                "ident": self.ident,
                "data": dict(self.data),
                "pid": os.getpid(),
                "configured": self.configured,
                "configure_args": self.configure_args,
                "configure_pid": self.configure_pid,
            }
        }

    @RiggerBasePlugin.check_configured
    def configured_only(self, tag: str) -> tuple[None, dict[str, Any]]:
        return None, {"configured_hook_ran": [f"{self.ident}:{tag}"]}


class Appender(RiggerBasePlugin):
    """On ``step``, appends its ident to ``out/order.txt`` and refuses overlap.

    A ``busy`` marker created exclusively proves no other Appender hook ran at
    the same moment.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("step")

    def step(self) -> None:
        out = Path(self.data["out"])
        busy = os.open(out / "busy", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(busy)
        append_line(out / "order.txt", self.ident)
        os.unlink(out / "busy")


class Rendezvous(RiggerBasePlugin):
    """On ``meet``, announces arrival and waits for every ident in ``peers``.

    It can only return if all peers are inside their hook at the same time.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("meet")

    def meet(self) -> tuple[None, dict[str, Any]]:
        out = Path(self.data["out"])
        (out / f"arrived-{self.ident}").touch()
        deadline_s = self.data.get("deadline_s", RENDEZVOUS_DEADLINE_S)
        for peer in self.data["peers"]:
            wait_for_file(out / f"arrived-{peer}", deadline_s)
        return None, {"met": [self.ident]}


class Finisher(RiggerBasePlugin):
    """Returns the updates in its data; in threaded runs it can finish late.

    With ``after: <ident>`` and a threaded configuration it does not return
    before that instance's hook for the same ``event_id`` has completed, so
    replies arrive in an order unlike the configuration order.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("work")

    def work(self, config: dict, event_id: int) -> tuple[Any, Any]:
        out = Path(self.data["out"])
        after = self.data.get("after")
        if after and config.get("threaded"):
            wait_for_file(out / f"{event_id}-{after}.done", RENDEZVOUS_DEADLINE_S)
        (out / f"{event_id}-{self.ident}.done").touch()
        return self.data.get("local_updates"), self.data.get("global_updates")


class Counter(RiggerBasePlugin):
    """Reads ``n`` and ``log`` and returns derived global updates."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("count")

    def count(self, n: int, log: list) -> tuple[None, dict[str, Any]]:
        return None, {"n": n + 1, "log": [f"{self.ident} saw {list(log)}"]}


class Faulty(RiggerBasePlugin):
    """Fails its ``go`` hook the way ``self.data['mode']`` says.

    Modes: raise, missing (a required argument nobody provides), malformed
    (returns 42), exit (os._exit(7)), sigkill (kills itself), none (succeeds).
    """

    def plugin_initialize(self) -> None:
        mode = self.data["mode"]
        if mode == "missing":
            self.register_plugin_hook("go", self.needs_absent_value)
        else:
            self.register_plugin_hook("go")

    def go(self) -> Any:
        mode = self.data["mode"]
        if mode == "raise":
            raise ValueError("boom from faulty")
        if mode == "malformed":
            return 42
        if mode == "exit":
            os._exit(7)
        if mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        return None, {"faulty_ok": self.ident}

    def needs_absent_value(self, absent_value: Any) -> None:
        return None


class Good(RiggerBasePlugin):
    """Succeeds on ``go`` with a local and a global update naming itself."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("go")

    def go(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"good_local": [self.ident]}, {"good": [self.ident]}


class Phoenix(RiggerBasePlugin):
    """Records initialize and configure in files; ``go(die=True)`` kills it."""

    def plugin_initialize(self) -> None:
        append_line(Path(self.data["out"]) / "init.txt", str(os.getpid()))
        self.register_plugin_hook("go")
        self.register_plugin_hook("guarded", self.guarded)
        self.configure_args: Any = None

    def configure(self, *args: Any, **kwargs: Any) -> None:
        self.configure_args = [list(args), kwargs]
        append_line(Path(self.data["out"]) / "configure.txt", str(os.getpid()))

    def go(self, die: bool = False) -> tuple[None, dict[str, Any]]:
        if die:
            os.kill(os.getpid(), signal.SIGKILL)
        return None, {"phoenix": {"pid": os.getpid(), "args": self.configure_args}}

    @RiggerBasePlugin.check_configured
    def guarded(self) -> tuple[None, dict[str, Any]]:
        return None, {"guarded_ran": True}


class Nester(RiggerBasePlugin):
    """Fires nested events from inside its hooks and records what runs when."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("outer")
        self.register_plugin_hook("inner")
        self.register_plugin_hook("chain")
        self.register_plugin_hook("flood")

    def outer(self) -> tuple[None, dict[str, Any]]:
        out = Path(self.data["out"])
        first = self.fire_hook("inner", tag="x1")
        self.fire_hook("inner", tag="x2")
        append_line(out / "trace.txt", "outer done")
        return None, {"nested_return": repr(first)}

    def inner(self, tag: str) -> tuple[None, dict[str, Any]]:
        append_line(Path(self.data["out"]) / "trace.txt", f"inner {tag}")
        return None, {"inner_seen": [tag]}

    def chain(self, depth: int) -> None:
        append_line(Path(self.data["out"]) / "chain.txt", str(depth))
        self.fire_hook("chain", depth=depth + 1)

    def flood(self, count: int) -> None:
        for index in range(count):
            self.fire_hook("inner", tag=f"flood-{index}")


class Background(RiggerBasePlugin):
    """A ``slow`` hook registered with bg=True that waits for ``out/go``.

    It writes ``out/finished`` right before it returns.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("slow", bg=True)
        self.register_plugin_hook("quick")

    def slow(self) -> tuple[dict[str, Any], dict[str, Any]]:
        out = Path(self.data["out"])
        wait_for_file(out / "go", RENDEZVOUS_DEADLINE_S)
        (out / "finished").touch()
        return {"bg_local": True}, {"bg_done": [self.ident], "seq": [self.ident]}

    def quick(self) -> tuple[None, dict[str, Any]]:
        return None, {"quick_done": True}


class WaitsForGo(RiggerBasePlugin):
    """A plain ``slow`` hook (no bg flag) that waits for ``out/go``.

    Configured with ``background: True`` it must not block the event.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("slow")

    def slow(self) -> tuple[dict[str, Any], dict[str, Any]]:
        out = Path(self.data["out"])
        wait_for_file(out / "go", RENDEZVOUS_DEADLINE_S)
        (out / "finished").touch()
        return {"bg_local": True}, {"bg_done": [self.ident]}


class Releaser(RiggerBasePlugin):
    """On ``fg``, releases a waiting background hook and waits until it finished.

    The background reply is then in flight while this event is still running.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("fg")

    def fg(self) -> tuple[None, dict[str, Any]]:
        out = Path(self.data["out"])
        if self.data.get("release"):
            (out / "go").touch()
            wait_for_file(out / "finished", RENDEZVOUS_DEADLINE_S)
        return None, {"seq": [self.ident]}


class InitMarker(RiggerBasePlugin):
    """Writes ``out/init-<ident>`` in plugin_initialize (and nothing earlier)."""

    def plugin_initialize(self) -> None:
        (Path(self.data["out"]) / f"init-{self.ident}").write_text(str(os.getpid()))
        self.register_plugin_hook("ping", self.ping)

    def ping(self) -> tuple[None, dict[str, Any]]:
        return None, {"pinged": {self.ident: os.getpid()}}


class Talker(RiggerBasePlugin):
    """Writes a token to stdout, stderr, the fd 1 directly or a logger."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("talk")

    def talk(self, channel: str, token: str) -> tuple[None, dict[str, Any]]:
        if channel == "stdout":
            print(token, flush=True)
        elif channel == "stderr":
            print(token, file=sys.stderr, flush=True)
        elif channel == "fd1":
            os.write(1, (token + "\n").encode())
        elif channel == "logging":
            logging.getLogger("some.plugin.library").warning("%s", token)
        return None, {"talked": True}


class DoubleRegistration(RiggerBasePlugin):
    """Registers two functions for one event, which one plugin may not do."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("twice", self.first)
        self.register_plugin_hook("twice", self.second)

    def first(self) -> None:
        return None

    def second(self) -> None:
        return None
