"""Baselines built from the standard library: pipe floor, in-process, process pool.

Data flow of the floor (one event, N children)::

    parent: pickle.dumps(message) -> [kind|length|payload] -> os.write, per child
    child:  os.read -> pickle.loads -> pickle.dumps -> [kind|length|payload] -> os.write
    parent: selectors wait on all reply pipes -> os.read -> pickle.loads, per child

Each child is a bare ``os.fork`` of the runner: it imports nothing and runs
only the echo loop below, so the round trip is what an isolated call costs in
Python with no framework around it.
"""

from __future__ import annotations

import inspect
import io
import multiprocessing
import os
import pickle
import selectors
import signal
import struct
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from rigger_sandbox import recursive_update

from . import hooks

HEADER = struct.Struct("<BQ")  # message kind, payload length
KIND_CALL = 1
READ_CHUNK = 1 << 16
REAP_SECONDS = 5.0


def _read_frame(fd: int, buffer: bytearray) -> bytes:
    """Read one frame from ``fd``; ``buffer`` holds bytes read past earlier frames."""
    while len(buffer) < HEADER.size:
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            raise EOFError("the echo child closed its pipe")
        buffer += chunk
    _, length = HEADER.unpack_from(buffer)
    end = HEADER.size + length
    while len(buffer) < end:
        chunk = os.read(fd, max(READ_CHUNK, end - len(buffer)))
        if not chunk:
            raise EOFError("the echo child closed its pipe mid-frame")
        buffer += chunk
    payload = bytes(buffer[HEADER.size : end])
    del buffer[:end]
    return payload


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _echo_loop(read_fd: int, write_fd: int) -> None:
    buffer = bytearray()
    while True:
        try:
            payload = _read_frame(read_fd, buffer)
        except EOFError:
            return
        reply = pickle.dumps(pickle.loads(payload), protocol=5)
        _write_all(write_fd, HEADER.pack(KIND_CALL, len(reply)) + reply)


def _sink_loop(read_fd: int, write_fd: int) -> None:
    """Receive length-prefixed raw bytes into one buffer; answer the length."""
    reader = io.FileIO(read_fd, "rb", closefd=False)
    while True:
        header = reader.read(HEADER.size)
        if not header or len(header) < HEADER.size:
            return
        _, length = HEADER.unpack(header)
        target = bytearray(length)
        view = memoryview(target)
        got = 0
        while got < length:
            count = reader.readinto(view[got:])
            if not count:
                return
            got += count
        _write_all(write_fd, HEADER.pack(KIND_CALL, got))


class ForkedChildren:
    """N forked children, each running ``loop(read_fd, write_fd)`` on its pipes."""

    def __init__(self, count: int, loop: Callable[[int, int], None]) -> None:
        self.pids: list[int] = []
        self.to_child: list[int] = []
        self.from_child: list[int] = []
        try:
            for _ in range(count):
                self._fork_one(loop)
        except BaseException:
            self.close()
            raise

    def _fork_one(self, loop: Callable[[int, int], None]) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            # Siblings' pipe ends must not stay open here, or a sibling would
            # never see end-of-file when the parent closes its side.
            for fd in (*self.to_child, *self.from_child, down_w, up_r):
                os.close(fd)
            status = 0
            try:
                loop(down_r, up_w)
            except BaseException:
                status = 1
            os._exit(status)
        os.close(down_r)
        os.close(up_w)
        self.pids.append(pid)
        self.to_child.append(down_w)
        self.from_child.append(up_r)

    def close(self) -> None:
        """Close the pipes, then reap the children (kill those that linger)."""
        for fd in (*self.to_child, *self.from_child):
            os.close(fd)
        self.to_child, self.from_child = [], []
        deadline = time.monotonic() + REAP_SECONDS
        for pid in self.pids:
            while True:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                # Polling with a bounded deadline: the child exits on EOF.
                time.sleep(0.001)
        self.pids = []


class PipeFloor:
    """The floor: N forked children echo one pickled hook message."""

    def __init__(self, count: int, message: Any) -> None:
        self.message = message
        self.children = ForkedChildren(count, _echo_loop)
        self.buffers = [bytearray() for _ in range(count)]
        self.selector = selectors.DefaultSelector()
        for index, fd in enumerate(self.children.from_child):
            self.selector.register(fd, selectors.EVENT_READ, index)

    def call(self) -> list[Any]:
        payload = pickle.dumps(self.message, protocol=5)
        frame = HEADER.pack(KIND_CALL, len(payload)) + payload
        for fd in self.children.to_child:
            _write_all(fd, frame)
        if len(self.children.pids) == 1:
            fd = self.children.from_child[0]
            return [pickle.loads(_read_frame(fd, self.buffers[0]))]
        replies: list[Any] = [None] * len(self.buffers)
        pending = len(self.buffers)
        while pending:
            for key, _ in self.selector.select():
                index = key.data
                replies[index] = pickle.loads(_read_frame(key.fd, self.buffers[index]))
                pending -= 1
        return replies

    def close(self) -> None:
        self.selector.close()
        self.children.close()


class RawPipe:
    """Raw bytes through a pipe to one forked child, which answers the length."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.children = ForkedChildren(1, _sink_loop)
        self.buffer = bytearray()

    def call(self) -> int:
        fd = self.children.to_child[0]
        _write_all(fd, HEADER.pack(KIND_CALL, len(self.payload)))
        _write_all(fd, self.payload)
        reply = self.children.from_child[0]
        while len(self.buffer) < HEADER.size:
            chunk = os.read(reply, HEADER.size - len(self.buffer))
            if not chunk:
                raise EOFError("the sink child closed its pipe")
            self.buffer += chunk
        _, length = HEADER.unpack(bytes(self.buffer))
        self.buffer.clear()
        return length

    def close(self) -> None:
        self.children.close()


def parameter_names(func: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword names a hook receives, computed once as Rigger does."""
    return tuple(
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def select_args(names: Sequence[str], local: dict, global_: dict) -> dict:
    """Rigger's argument selection: the declared names, local over global."""
    selected = {}
    for name in names:
        if name in local:
            selected[name] = local[name]
        elif name in global_:
            selected[name] = global_[name]
    return selected


def merge_updates(results: Sequence[Any], local: dict, global_: dict) -> None:
    """Merge hook results (pairs or None) in order, as Rigger merges them."""
    for result in results:
        if result is None:
            continue
        local_updates, global_updates = result
        if local_updates:
            recursive_update(local, local_updates)
        if global_updates:
            recursive_update(global_, global_updates)


class InProcess:
    """The same hooks called directly: Rigger's phases without any isolation."""

    def __init__(
        self,
        hook_funcs: Sequence[Callable[..., Any]],
        pre: Sequence[Callable[..., Any]] = (),
    ) -> None:
        self.pre = [(f, parameter_names(f)) for f in pre]
        self.hook_funcs = [(f, parameter_names(f)) for f in hook_funcs]
        self.global_data: dict[str, Any] = {}

    def process_hook(self, **kwargs: Any) -> tuple[dict, dict]:
        local = dict(kwargs)
        glob = self.global_data
        for func, names in self.pre:
            merge_updates([func(**select_args(names, local, glob))], local, glob)
        results = [f(**select_args(n, local, glob)) for f, n in self.hook_funcs]
        merge_updates(results, local, glob)
        return local, glob

    def close(self) -> None:
        self.global_data.clear()


class Pool:
    """ProcessPoolExecutor submit/result of the same hook, one worker per plugin."""

    def __init__(
        self,
        count: int,
        hook_name: str,
        start_method: str,
        pre: Sequence[Callable[..., Any]] = (),
    ) -> None:
        self.count = count
        self.hook_name = hook_name
        self.names = parameter_names(hooks.HOOKS_BY_NAME[hook_name])
        self.pre = [(f, parameter_names(f)) for f in pre]
        context = multiprocessing.get_context(start_method)
        self.executor = ProcessPoolExecutor(max_workers=count, mp_context=context)
        self.global_data: dict[str, Any] = {}

    def process_hook(self, **kwargs: Any) -> tuple[dict, dict]:
        local = dict(kwargs)
        glob = self.global_data
        for func, names in self.pre:
            merge_updates([func(**select_args(names, local, glob))], local, glob)
        selected = select_args(self.names, local, glob)
        futures = [
            self.executor.submit(hooks.call_by_name, self.hook_name, selected)
            for _ in range(self.count)
        ]
        merge_updates([f.result() for f in futures], local, glob)
        return local, glob

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def child_start_seconds(start_method: str, deadline_s: float = 60.0) -> float:
    """Seconds from ``Process.start()`` until one child runs its first line."""
    context: Any = multiprocessing.get_context(start_method)
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_signal_ready, args=(writer,))
    try:
        start = time.perf_counter()
        process.start()
        if not reader.poll(deadline_s):
            raise RuntimeError(
                f"a {start_method} child did not signal within {deadline_s} s "
                f"(exit code {process.exitcode})"
            )
        reader.recv_bytes()
        elapsed = time.perf_counter() - start
    finally:
        writer.close()
        if process.pid is not None:
            process.join(REAP_SECONDS)
            if process.exitcode is None:
                process.kill()
                process.join()
        reader.close()
    return elapsed


def _signal_ready(writer: Any) -> None:
    writer.send_bytes(b"!")
