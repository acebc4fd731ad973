"""The plugin process: set up isolation, load the plugin, then serve hook calls.

A plugin process reads one request at a time from its request pipe, runs it,
and writes one reply to its reply pipe.  Its stdout and stderr are pipes the
parent reads and forwards to logging; records the plugin logs go to stderr in
a tagged line format the parent recognises.  A watchdog thread kills the whole
process group when the request pipe reports hang-up, which happens only when
the parent is gone.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import logging
import os
import pickle
import resource
import select
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from multiprocessing import reduction
from typing import Any

import dill

from . import wire
from .errors import NestedEventError, RiggerError
from .namespaces import split_result

# Descriptor numbers inside the plugin process (stdio is 0, 1, 2).
REQ_FD, REP_FD = 3, 4
LOG_MARK = "\x1e"
LOG_SEP = "\x1f"
LOG_NEWLINE = "\x1d"


@dataclass
class Boot:
    """Everything a plugin process needs to start; sent once at launch."""

    ident: str
    data: dict
    source: tuple  # ("ref", module, qualname) | ("value", dill bytes) |
    #                ("module", module, attr) | ("file", path, attr)
    trusted: bool
    max_message: int
    max_nested_events: int
    log_level: int
    memory_limit_mb: float | None = None
    cpu_limit_s: float | None = None
    max_open_files: int | None = None
    cwd: str | None = None
    env: Any = "inherit"
    configure: tuple | None = None  # (codec, payload) of (args, kwargs), replayed


class PassFd:
    """A descriptor handed to the plugin process under any start method.

    Under fork the number is inherited as is; under spawn and forkserver,
    pickling it asks multiprocessing to duplicate it into the child.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple:
        return (_rebuild_fd, (reduction.DupFd(self.fd),))


def _rebuild_fd(dup: Any) -> PassFd:
    return PassFd(dup.detach())


def main(boot: Boot, req: PassFd, rep: PassFd, out: PassFd, err: PassFd) -> None:
    """Entry point of the plugin process (the multiprocessing target)."""
    fds = [passed.fd for passed in (req, rep, out, err)]
    _isolate(fds, boot)
    _install_logging(boot)
    threading.Thread(
        target=_watch_parent, name="rigger-parent-watch", daemon=True
    ).start()
    stage = "load"
    try:
        _apply_limits(boot)
        cls = _load_class(boot)
        stage = "init"
        plugin = _instantiate(cls, boot)
    except BaseException as exc:  # noqa: BLE001 - report every startup failure
        _send(
            wire.FATAL,
            (stage, f"{type(exc).__name__}: {exc}", traceback.format_exc()),
            boot,
        )
        os._exit(3)
    hooks = {
        event: (
            entry.spec.params,
            tuple(sorted(entry.spec.required)),
            entry.spec.varkw,
            entry.bg,
            entry.timeout,
        )
        for event, entry in plugin.callbacks.items()
    }
    _send(wire.READY, (os.getpid(), hooks), boot)
    _serve(plugin, boot)


def _isolate(fds: list[int], boot: Boot) -> None:
    """Own session and process group, stdio on pipes, no inherited descriptors."""
    try:
        os.setsid()
    except OSError:
        pass
    req, rep, out, err = fds
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    # Move the protocol pipes to fixed low numbers, then close everything else
    # (under fork the child inherits every descriptor the parent had open).
    moved_req = os.dup(req)
    moved_rep = os.dup(rep)
    os.dup2(moved_req, REQ_FD)
    os.dup2(moved_rep, REP_FD)
    os.closerange(REP_FD + 1, _max_fd())
    # The inherited stream objects may wrap descriptors closed above (a test
    # runner's capture files, say): bind fresh ones to 0, 1 and 2.
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if boot.cwd:
        os.chdir(boot.cwd)
    if isinstance(boot.env, dict):
        os.environ.clear()
        os.environ.update(boot.env)


def _max_fd() -> int:
    try:
        return max(int(name) for name in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _install_logging(boot: Boot) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ForwardHandler())
    root.setLevel(boot.log_level)


class _ForwardHandler(logging.Handler):
    """Writes each record to stderr as one tagged line the parent parses."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record).replace("\n", LOG_NEWLINE)
            line = f"{LOG_MARK}{record.levelno}{LOG_SEP}{record.name}{LOG_SEP}{text}\n"
            os.write(2, line.encode("utf-8", "replace"))
        except Exception:  # noqa: BLE001 - logging must never break a hook
            self.handleError(record)


def _watch_parent() -> None:
    """Kill the whole process group once the parent's end of the pipe is gone."""
    poller = select.poll()
    poller.register(REQ_FD, 0)  # hang-up and errors are always reported
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        if any(
            mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL)
            for _, mask in events
        ):
            try:
                os.killpg(os.getpgrp(), signal.SIGKILL)
            finally:
                os._exit(1)


def _apply_limits(boot: Boot) -> None:
    if boot.memory_limit_mb:
        size = int(boot.memory_limit_mb * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    if boot.cpu_limit_s:
        soft = max(1, int(boot.cpu_limit_s + 0.999))
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))
    if boot.max_open_files:
        limit = boot.max_open_files + REP_FD + 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def _load_class(boot: Boot) -> type:
    kind = boot.source[0]
    if kind == "value":
        cls = dill.loads(boot.source[1])
    elif kind in ("ref", "module"):
        cls = _attr(importlib.import_module(boot.source[1]), boot.source[2])
    else:
        path, attr = boot.source[1], boot.source[2]
        name = "rigger_plugin_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load plugin file {path!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        cls = _attr(module, attr)
    if not isinstance(cls, type):
        raise TypeError(f"{boot.source[1:]} is not a class")
    return cls


def _instantiate(cls: type, boot: Boot) -> Any:
    plugin = cls(boot.ident, boot.data, _Nested(boot))
    if boot.configure is not None:
        codec, payload = boot.configure
        args, kwargs = (
            dill.loads(payload) if codec == wire.CODEC_DILL else pickle.loads(payload)
        )
        plugin.configure(*args, **kwargs)
        plugin.configured = True
    return plugin


def _attr(obj: Any, qualname: str) -> Any:
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


class _Nested:
    """Collects the events a hook fires, to send with the hook's reply."""

    def __init__(self, boot: Boot) -> None:
        self.limit = boot.max_nested_events
        self.events: list[tuple[str, dict]] | None = None

    def __call__(self, name: str, kwargs: dict) -> None:
        if self.events is None:
            raise NestedEventError("fire_hook is only available while a hook runs")
        if not isinstance(name, str) or not name:
            raise RiggerError(f"fire_hook needs an event name string, got {name!r}")
        if len(self.events) >= self.limit:
            raise NestedEventError(
                f"a hook may queue at most {self.limit} nested events "
                "(max_nested_events)"
            )
        self.events.append((name, kwargs))


def _serve(plugin: Any, boot: Boot) -> None:
    nested: _Nested = plugin._nested
    requests = wire.BlockingFrameReader(REQ_FD)
    while True:
        try:
            kind, codec, payload = requests.read()
        except EOFError:
            return
        if kind == wire.STOP:
            return
        try:
            message = (
                dill.loads(payload)
                if codec == wire.CODEC_DILL
                else pickle.loads(payload)
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a class this process lacks
            call_id = wire.peek_call_id(payload)
            if call_id is None:
                raise
            text = f"the plugin process cannot decode the request: {exc!r}"
            _send_failure(call_id, "exception", exc, boot, message=text)
            continue
        call_id = message[0]
        nested.events = []
        try:
            if kind == wire.CALL:
                hook = message[1]
                entry = plugin.callbacks.get(hook)
                if entry is None:
                    raise RiggerError(f"plugin {boot.ident!r} has no hook {hook!r}")
                result = entry.func(**message[2])
                local, global_ = split_result(entry.spec.name, result)
            else:
                plugin.configure(*message[1], **message[2])
                plugin.configured = True
                local = global_ = None
            reply = (call_id, local, global_, nested.events)
            nested.events = None
            _send_reply(reply, boot)
        except SystemExit as exc:
            nested.events = None
            code = (
                exc.code
                if isinstance(exc.code, int)
                else (0 if exc.code is None else 1)
            )
            _send_failure(call_id, "exit", exc, boot, exitcode=code)
            os._exit(code)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back
            nested.events = None
            _send_failure(call_id, _classify(exc, boot), exc, boot)


def _classify(exc: BaseException, boot: Boot) -> str:
    if isinstance(exc, MemoryError) and boot.memory_limit_mb:
        return "limit:memory_limit_mb"
    if isinstance(exc, OSError) and exc.errno == errno.EMFILE and boot.max_open_files:
        return "limit:max_open_files"
    return "exception"


def _send_reply(reply: tuple, boot: Boot) -> None:
    try:
        codec, payload = wire.encode(reply, allow_dill=boot.trusted)
    except Exception as exc:  # noqa: BLE001 - any pickling failure
        _send_failure(
            reply[0],
            "exception",
            exc,
            boot,
            message=f"the hook returned a value that cannot be serialized: "
            f"{type(exc).__name__}: {exc}",
        )
        return
    if len(payload) > boot.max_message:
        _send_failure(
            reply[0],
            "exception",
            None,
            boot,
            message=f"the hook returned {len(payload)} bytes, more than "
            f"max_message_mb allows ({boot.max_message} bytes)",
        )
        return
    wire.write_frame(REP_FD, wire.RESULT, codec, payload)


def _send_failure(
    call_id: int,
    kind: str,
    exc: BaseException | None,
    boot: Boot,
    *,
    message: str | None = None,
    exitcode: int | None = None,
) -> None:
    if message is None and exc is not None:
        message = f"{type(exc).__name__}: {exc}"
    text = "".join(traceback.format_exception(exc)) if exc is not None else None
    payload = (call_id, kind, message or "", text, exitcode)
    _send(wire.FAILURE, payload, boot)


def _send(kind: int, payload: tuple, boot: Boot) -> None:
    data = pickle.dumps(payload, wire.PICKLE_PROTOCOL)
    wire.write_frame(REP_FD, kind, wire.CODEC_PICKLE, data)
