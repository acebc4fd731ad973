"""Plugins that misbehave on cue for the fault tests; they run in plugin processes.

Every fault is real: the plugin raises, exits, kills itself, hangs, allocates,
burns CPU, opens files, starts processes, floods its output, corrupts its reply
pipe or returns hostile values. A hook that must be caught mid-flight announces
itself by atomically creating a file (``announce``) before it blocks, so the
test can act on a real event instead of the clock.

Waits inside the plugins have deadlines, so that a sandbox that fails to end a
plugin leaves a bounded mess rather than processes that live forever.
"""

from __future__ import annotations

import ctypes
import datetime
import decimal
import os
import pathlib
import select
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from rigger_sandbox import RiggerBasePlugin

# How long any process started here may block before it gives up by itself.
ORPHAN_DEADLINE_S = 300.0
# How long a plugin waits for the processes it started to report their pids.
SPAWN_DEADLINE_S = 30.0


def announce(path: str | os.PathLike[str], text: str) -> None:
    """Create ``path`` holding ``text`` atomically: complete or not at all."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line with a single write, safe from many processes at once."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_pids(path: str | os.PathLike[str]) -> list[int]:
    path = Path(path)
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


def block(deadline_s: float = ORPHAN_DEADLINE_S) -> None:
    """Block in the kernel (not on the clock) until the deadline."""
    select.select([], [], [], deadline_s)


def wait_for_lines(path: str | os.PathLike[str], count: int) -> list[int]:
    """Wait until ``path`` lists ``count`` pids; TimeoutError past the deadline."""
    deadline = time.monotonic() + SPAWN_DEADLINE_S
    while len(pids := read_pids(path)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(pids)} of {count} pids in {path}")
        time.sleep(0.005)
    return pids


# -- the faults ---------------------------------------------------------------


class CustomBaseError(BaseException):
    """A BaseException subclass outside the Exception hierarchy."""


class Evil:
    """Unpickling an Evil creates (truncates) ``path`` in the decoding process."""

    def __init__(self, path: str, how: str = "open") -> None:
        self.path = path
        self.how = how

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.how == "system":
            return (os.system, (f"touch {self.path}",))
        return (open, (self.path, "w"))


class CustomThing:
    """A harmless user class: only trusted plugins may send it."""

    def __init__(self, name: str, numbers: list[int]) -> None:
        self.name = name
        self.numbers = numbers

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is CustomThing
            and other.name == self.name
            and other.numbers == self.numbers
        )

    def __hash__(self) -> int:
        return hash(self.name)


def safe_values() -> dict[str, Any]:
    """One value of every type an untrusted plugin may send."""
    return {
        "none": None,
        "bool": True,
        "int": 2**70,
        "float": 1.5,
        "complex": 1 + 2j,
        "str": "text",
        "bytes": b"\x00\xff",
        "bytearray": bytearray(b"ab"),
        "list": [1, [2]],
        "tuple": (1, (2, 3)),
        "dict": {"k": {"n": 1}},
        "set": {1, 2},
        "frozenset": frozenset({3}),
        "datetime": datetime.datetime(2024, 5, 6, 7, 8, 9, 10),
        "aware": datetime.datetime(2024, 5, 6, tzinfo=datetime.UTC),
        "date": datetime.date(2024, 5, 6),
        "time": datetime.time(7, 8, 9),
        "timedelta": datetime.timedelta(days=1, seconds=2),
        "decimal": decimal.Decimal("1.10"),
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "purepath": pathlib.PurePosixPath("/a/b"),
    }


def _spawn_shell(out: Path) -> int:
    """A shell with a background sleeper; both pids go to ``out/pids``."""
    pids = out / "pids"
    script = f"sleep {ORPHAN_DEADLINE_S:.0f} & echo $! >> {pids}; "
    script += f"exec sleep {ORPHAN_DEADLINE_S:.0f}"
    shell = subprocess.Popen(["/bin/sh", "-c", script])
    append_line(pids, str(shell.pid))
    return 2


def _spawn_subprocess(out: Path) -> int:
    """A Python subprocess that itself starts a grandchild."""
    code = (
        "import os, select, subprocess, sys\n"
        f"pids = {str(out / 'pids')!r}\n"
        "child = subprocess.Popen([sys.executable, '-c',\n"
        f"    'import select; select.select([], [], [], {ORPHAN_DEADLINE_S})'])\n"
        "fd = os.open(pids, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        "os.write(fd, f'{os.getpid()}\\n{child.pid}\\n'.encode())\n"
        f"select.select([], [], [], {ORPHAN_DEADLINE_S})\n"
    )
    subprocess.Popen([sys.executable, "-c", code])
    return 2


def _fork_tree(out: Path, depth: int = 3, fanout: int = 3) -> int:
    """Fork a tree ``fanout`` wide and ``depth`` deep; every node records its pid.

    Forked children keep every descriptor the plugin had, the protocol pipes
    included, as a careless plugin's children would.
    """

    def grow(level: int) -> None:
        for _ in range(fanout):
            if os.fork() == 0:
                try:
                    append_line(out / "pids", str(os.getpid()))
                    if level > 1:
                        grow(level - 1)
                    block()
                finally:
                    os._exit(0)

    grow(depth)
    return sum(fanout**level for level in range(1, depth + 1))


SPAWNERS = {
    "shell": _spawn_shell,
    "subprocess": _spawn_subprocess,
    "fork_tree": _fork_tree,
}


def _pipe_fds() -> list[int]:
    """Every descriptor >= 3 of this process that is a pipe or a socket."""
    fds = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < 3:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            fds.append(fd)
    return fds


def _write_garbage() -> None:
    """Write bytes that are no valid frame to every pipe the plugin holds.

    A plugin finds its protocol descriptors only through the sandbox's
    internals, so a hostile one just writes everywhere it can.
    """
    garbage = b"\xfe\xed\xfa\xce" + b"\xff" * 60 + os.urandom(4032)
    for fd in _pipe_fds():
        try:
            os.set_blocking(fd, False)
            os.write(fd, garbage)
        except OSError:
            pass


def _close_pipes() -> None:
    for fd in _pipe_fds():
        os.close(fd)


def _flood(megabytes: int) -> None:
    """Write megabytes to stdout and stderr, through Python and raw descriptors."""
    line = "y" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    sys.stdout.write("FLOOD-STDOUT-END\n")
    sys.stdout.flush()
    os.write(1, b"z" * (2 << 20))  # one 2 MiB line without a newline
    os.write(1, b"\nFLOOD-RAW-END\n")
    os.write(2, os.urandom(256 * 1024))  # binary garbage on stderr
    for _ in range(megabytes * 1024):
        sys.stderr.write(line)
    sys.stderr.write("\nFLOOD-STDERR-END\n")
    sys.stderr.flush()


def _allocate(max_mb: int) -> None:
    """Allocate and touch memory in 8 MiB steps, up to ``max_mb`` in total."""
    held = []
    for _ in range(max_mb // 8):
        held.append(b"x" * (8 << 20))


def _burn_cpu(max_cpu_s: float) -> None:
    """Spin on the CPU until the process has used ``max_cpu_s`` CPU seconds."""
    total = 0
    while time.process_time() < max_cpu_s:
        for value in range(10_000):
            total += value


def _open_files(count: int) -> None:
    """Open ``count`` descriptors, holding them all until the hook ends."""
    fds = []
    try:
        for _ in range(count):
            fds.append(os.open(os.devnull, os.O_RDONLY))
    finally:
        for fd in fds:
            os.close(fd)


def _current_call_id() -> int:
    """The id of the call being served, read from the serving loop's frame."""
    frame = sys._getframe(1)
    while frame is not None and "call_id" not in frame.f_locals:
        frame = frame.f_back
    if frame is None:
        raise RuntimeError("the serving loop has no 'call_id': update this test")
    return frame.f_locals["call_id"]


def _forge_reply(path: str) -> None:
    """Write a well-formed RESULT frame whose payload unpickles into ``open(path)``.

    This uses the sandbox's wire internals the way a hostile plugin would, and
    reads the current call id from the serving loop's frame.
    """
    import pickle

    from rigger_sandbox import wire

    payload = pickle.dumps((_current_call_id(), {"evil": Evil(path)}, None, []))
    header = wire.HEADER.pack(wire.RESULT, wire.CODEC_PICKLE, len(payload))
    for fd in _pipe_fds():
        try:
            os.write(fd, header + payload)
        except OSError:
            pass


def _forge_huge_frame() -> None:
    """Announce a RESULT frame of nearly 4 GiB and send only its first bytes."""
    from rigger_sandbox import wire

    header = wire.HEADER.pack(wire.RESULT, wire.CODEC_PICKLE, 0xFFFFFF00)
    for fd in _pipe_fds():
        try:
            os.write(fd, header + b"\x80\x05" + b"\x00" * 1024)
        except OSError:
            pass


# A call id the parent never uses: its calls are numbered from 1 upwards.
UNASKED_CALL_ID = 2**31 - 1


def _flood_frames(seconds: float, megabytes: int) -> None:
    """Write well-formed RESULT frames for a call never made, without end.

    Each write is a batch of over 64 KiB of small frames, so a reader that
    keeps reading while the pipe has bytes, before handling any frame, never
    stops reading.  The flood ends after ``seconds`` or ``megabytes``, so that
    a parent that does buffer it all stays within what the machine can hold.
    """
    import pickle

    from rigger_sandbox import wire
    from rigger_sandbox._child import REP_FD

    payload = pickle.dumps((UNASKED_CALL_ID, None, None, []), wire.PICKLE_PROTOCOL)
    frame = wire.HEADER.pack(wire.RESULT, wire.CODEC_PICKLE, len(payload)) + payload
    batch = frame * (65536 // len(frame) + 1)
    deadline = time.monotonic() + seconds
    left = megabytes << 20
    while left > 0 and time.monotonic() < deadline:
        left -= os.write(REP_FD, batch)


def _reply_twice(seq: int, ident: str) -> None:
    """Answer the call being served twice, in one write, before its own reply."""
    import pickle

    from rigger_sandbox import wire
    from rigger_sandbox._child import REP_FD

    reply = ({f"done_{ident}": seq}, {"seen": {ident: [seq]}}, [])
    payload = pickle.dumps((_current_call_id(), *reply), wire.PICKLE_PROTOCOL)
    frame = wire.HEADER.pack(wire.RESULT, wire.CODEC_PICKLE, len(payload)) + payload
    os.write(REP_FD, frame * 2)


def _nested_mappings(depth: int) -> dict[str, Any]:
    """A mapping ``depth`` levels deep: {"a": {"a": ... {}}}."""
    mapping: dict[str, Any] = {}
    for _ in range(depth - 1):
        mapping = {"a": mapping}
    return mapping


class Recorder(RiggerBasePlugin):
    """A well-behaved plugin: records every event it sees in both namespaces."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("work")
        self.register_plugin_hook("ping")

    def work(self, seq: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return {f"done_{self.ident}": seq}, {"seen": {self.ident: [seq]}}

    def ping(self, i: int) -> tuple[None, dict[str, Any]]:
        return None, {"pings": {self.ident: [i]}}


class Faulty(RiggerBasePlugin):
    """Behaves like Recorder on ``work`` unless ``fault`` names a misdeed.

    ``arg`` carries the fault's parameter (a path, a size, a count). Faults that
    return still return updates, which the sandbox must discard whole.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("work")
        self.register_plugin_hook("token", self.token)
        self.token_value: str | None = None

    def configure(self, token: str) -> None:
        self.token_value = token

    @RiggerBasePlugin.check_configured
    def token(self) -> tuple[dict[str, Any], None]:
        return {"token": self.token_value, "token_pid": os.getpid()}, None

    def work(self, seq: int, fault: str | None = None, arg: Any = None) -> Any:
        local = {f"done_{self.ident}": seq}
        global_ = {"seen": {self.ident: [seq]}}
        if fault is None:
            return local, global_
        action = getattr(self, f"fault_{fault}")
        extra = action(arg)
        if extra is not None:
            local.update(extra[0] or {})
            global_.update(extra[1] or {})
        return local, global_

    # Raising.
    def fault_raise_exception(self, arg: Any) -> None:
        raise ValueError(f"deliberate failure {arg}")

    def fault_raise_keyboard_interrupt(self, arg: Any) -> None:
        raise KeyboardInterrupt(f"deliberate interrupt {arg}")

    def fault_raise_base_exception(self, arg: Any) -> None:
        raise CustomBaseError(f"deliberate base exception {arg}")

    def fault_sys_exit(self, arg: Any) -> None:
        sys.exit(arg)

    # Dying.
    def fault_os_exit(self, arg: Any) -> None:
        os._exit(arg)

    def fault_segfault(self, arg: Any) -> None:
        ctypes.string_at(0)

    def fault_abort(self, arg: Any) -> None:
        os.abort()

    def fault_wait_to_be_killed(self, arg: Any) -> None:
        announce(arg, str(os.getpid()))
        block()
        raise RuntimeError("nobody killed this plugin within its deadline")

    # Hanging.
    def fault_hang(self, arg: Any) -> None:
        announce(arg, str(os.getpid()))
        block()

    def fault_hang_ignoring_sigterm(self, arg: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        announce(arg, str(os.getpid()))
        block()

    # Resources.
    def fault_allocate(self, arg: Any) -> None:
        _allocate(arg)

    def fault_burn_cpu(self, arg: Any) -> None:
        _burn_cpu(arg)

    def fault_open_files(self, arg: Any) -> None:
        _open_files(arg)

    # Process trees: arg = {"out": dir, "kind": spawner, "then": exit|hang|return}.
    def fault_spawn(self, arg: Any) -> None:
        out = Path(arg["out"])
        expected = SPAWNERS[arg["kind"]](out)
        wait_for_lines(out / "pids", expected)
        if arg["then"] == "exit":
            os._exit(9)
        if arg["then"] == "return":
            return
        announce(out / "ready", str(os.getpid()))
        block()

    # Output and channel.
    def fault_flood(self, arg: Any) -> None:
        _flood(arg)

    def fault_garbage_on_pipes(self, arg: Any) -> None:
        _write_garbage()

    def fault_close_pipes(self, arg: Any) -> None:
        _close_pipes()

    # Return values.
    def fault_unserializable(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"partial": 1, "gen": (n for n in range(3))}, None

    def fault_oversized(self, arg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"partial": 1}, {"big": b"x" * (arg << 20)}

    def fault_evil(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"partial": 1, "nested": [{"deep": Evil(*arg)}]}, None

    def fault_forged_frame(self, arg: Any) -> None:
        _forge_reply(arg)

    def fault_forged_huge_frame(self, arg: Any) -> None:
        _forge_huge_frame()
        block()

    def fault_custom_value(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"thing": CustomThing("widget", [1, 2, 3])}, None

    def fault_lambda_value(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"fn": lambda x: x * 3}, None

    def fault_call_argument(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"called": arg(4)}, None

    def fault_safe_values(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"values": safe_values()}, None

    def fault_posix_path(self, arg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # A concrete path, unlike the pure paths untrusted plugins may send.
        return {"partial": 1}, {"big": pathlib.Path(arg)}

    def fault_echo_type(self, arg: Any) -> tuple[dict[str, Any], None]:
        return {"partial": type(arg).__qualname__}, None

    # Hostile updates and reply floods.
    def fault_cyclic_update(self, arg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        looped: dict[str, Any] = {}
        looped["a"] = looped
        return {"partial": 1}, {"big": looped}

    def fault_deep_update(self, arg: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        # Pickling recurses once per level: make room, as a plugin that
        # means to send such a value would.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * arg + 1000))
        return {"partial": 1}, {"big": _nested_mappings(arg)}

    def fault_flood_frames(self, arg: Any) -> None:
        _flood_frames(arg["seconds"], arg["megabytes"])

    def fault_reply_twice(self, arg: Any) -> None:
        _reply_twice(arg, self.ident)

    # Sequencing: arg = {"file": path, "then": fault name, "arg": its arg}.
    def fault_when_file_exists(self, arg: Any) -> Any:
        """Wait until ``arg["file"]`` lists a pid, then commit fault ``arg["then"]``."""
        wait_for_lines(arg["file"], 1)
        return getattr(self, f"fault_{arg['then']}")(arg.get("arg"))

    # Isolation.
    def fault_inspect(self, arg: Any) -> tuple[dict[str, Any], None]:
        fds = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                pass  # the directory descriptor listdir used, now closed
        return {
            "cwd": os.getcwd(),
            "env": dict(os.environ),
            "fds": fds,
            "stdin": sys.stdin.read(),
        }, None

    # Nested events.
    def fault_nested_loop(self, arg: Any) -> None:
        for i in range(arg):
            self.fire_hook("ping", i=i)

    def fault_nested_recurse(self, arg: Any) -> None:
        self.fire_hook("work", seq=arg + 1, fault="nested_recurse", arg=arg + 1)

    def fault_nested_fanout(self, arg: Any) -> None:
        for _ in range(3):
            self.fire_hook("work", seq=arg + 1, fault="nested_fanout", arg=arg + 1)


class SlowHook(RiggerBasePlugin):
    """Its ``work`` hook has its own timeout, from instance data ``hook_timeout``."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("work", self.work, timeout=self.data["hook_timeout"])

    def work(
        self, seq: int, fault: str | None = None, arg: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if fault == "hang":
            announce(arg, str(os.getpid()))
            block()
        if fault == "wait_for_release":
            announce(arg, str(os.getpid()))
            wait_for_lines(f"{arg}.release", 1)
        return {f"done_{self.ident}": seq}, {"seen": {self.ident: [seq]}}


class Background(Faulty):
    """``work`` as Recorder's; ``work_bg``, a background hook, misbehaves on cue.

    ``work_bg`` takes Faulty's faults and records its ``seq`` under
    ``bg_seen``; its timeout comes from instance data ``bg_timeout`` if set.
    """

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("work", self.record)
        options = {"bg": True}
        if "bg_timeout" in self.data:
            options["timeout"] = self.data["bg_timeout"]
        self.register_plugin_hook("work_bg", self.work_bg, **options)

    def record(self, seq: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return {f"done_{self.ident}": seq}, {"seen": {self.ident: [seq]}}

    def work_bg(
        self, seq: int, fault: str | None = None, arg: Any = None
    ) -> tuple[None, dict[str, Any]]:
        _, global_ = self.work(seq, fault, arg)
        global_["bg_seen"] = global_.pop("seen")
        return None, global_


class FailsToStart(Faulty):
    """Faulty whose plugin_initialize fails while the file ``data["marker"]`` exists."""

    def plugin_initialize(self) -> None:
        marker = self.data["marker"]
        if os.path.exists(marker):
            raise RuntimeError(f"deliberate start failure: {marker} exists")
        super().plugin_initialize()


class BadHookTable(Faulty):
    """Faulty that corrupts its own hook table: ``work`` gets a malformed timeout.

    It bypasses register_plugin_hook's checks the way any plugin can, since
    the table is an attribute of the plugin object.
    """

    def plugin_initialize(self) -> None:
        super().plugin_initialize()
        self.callbacks["work"].timeout = self.data["bad_timeout"]


class Ticker(RiggerBasePlugin):
    """Counts its calls and echoes each event, for the many-threads test."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("tick")
        self.calls = 0

    def tick(self, thread: int, seq: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.calls += 1
        return (
            {f"echo_{self.ident}": (thread, seq)},
            {
                "order": {self.ident: [(thread, seq)]},
                "calls": {self.ident: self.calls},
            },
        )


class Soaker(RiggerBasePlugin):
    """Echoes ``seq``; with ``crash_every`` in its data it dies on cue."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook("soak")
        self.crash_every = self.data.get("crash_every")
        self.crash_at = self.data.get("crash_at", 0)

    def soak(self, seq: int) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.crash_every and seq % self.crash_every == self.crash_at:
            os._exit(13)
        return {self.ident: seq}, {f"last_{self.ident}": seq}
