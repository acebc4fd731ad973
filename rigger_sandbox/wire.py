"""Wire protocol: framing on raw pipe descriptors, codecs and the safe decoder.

Every message is a 6-byte header followed by a payload::

    kind (u8) | codec (u8) | payload length (u32, little endian) | payload

``codec`` says how the payload was encoded: pickle (protocol 5) on the hot
path, dill only for values pickle refuses.  The parent decodes what an
untrusted plugin sends with :class:`SafeUnpickler`, which builds plain data and
a short list of value types and nothing else, so a crafted payload cannot run
code in the parent.  Lengths are checked against a cap before any buffer is
allocated.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import pickletools
import select
import struct
import time
from typing import Any

import dill

HEADER = struct.Struct("<BBI")
HEADER_SIZE = HEADER.size
MAX_FRAME = 2**32 - 1
PICKLE_PROTOCOL = 5

# Message kinds, parent to plugin process.
CALL = 1
CONFIGURE = 2
STOP = 3
# Message kinds, plugin process to parent.
READY = 10
RESULT = 11
FAILURE = 12
FATAL = 13

KIND_NAMES = {
    CALL: "call",
    CONFIGURE: "configure",
    STOP: "stop",
    READY: "ready",
    RESULT: "result",
    FAILURE: "failure",
    FATAL: "fatal",
}

CODEC_PICKLE = 0
CODEC_DILL = 1

_F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


class WireError(Exception):
    """The byte stream broke the protocol (bad header, size over the cap, EOF)."""


class UnsafeValue(pickle.UnpicklingError):
    """An untrusted payload named a type outside the allow-list."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(
            f"plugin returned a value of type {type_name}, which untrusted "
            "plugins may not send (allowed: plain data, datetime, Decimal, "
            "UUID, pure paths; set 'trusted: true' to allow any type)"
        )


# The value types an untrusted plugin may send besides plain data.  Each one is
# rebuilt from strings, numbers or bytes and runs no code chosen by the sender.
SAFE_TYPES = frozenset(
    {
        ("builtins", "complex"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
        ("uuid", "SafeUUID"),
        ("pathlib", "PurePath"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "PureWindowsPath"),
    }
)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that constructs only allow-listed types."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_TYPES:
            return super().find_class(module, name)
        raise UnsafeValue(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeValue("persistent reference")


_POLL_MAX_MS = 2**31 - 1


def poll_ms(seconds: float) -> int:
    """Milliseconds to give ``poll`` for ``seconds``: at least 1, at most its cap."""
    if seconds >= _POLL_MAX_MS / 1000:
        return _POLL_MAX_MS
    return max(1, int(seconds * 1000) + 1)


def encode(obj: Any, *, allow_dill: bool = True) -> tuple[int, bytes]:
    """Encode with pickle, falling back to dill for values pickle refuses."""
    try:
        return CODEC_PICKLE, pickle.dumps(obj, PICKLE_PROTOCOL)
    except Exception:
        if not allow_dill:
            raise
    return CODEC_DILL, dill.dumps(obj, PICKLE_PROTOCOL)


def decode(
    codec: int, payload: bytes | bytearray | memoryview, *, trusted: bool
) -> Any:
    """Decode a payload; untrusted payloads go through the allow-list."""
    if not trusted:
        if codec != CODEC_PICKLE:
            raise UnsafeValue("dill-encoded object")
        return SafeUnpickler(io.BytesIO(payload)).load()
    if codec == CODEC_DILL:
        return dill.loads(payload)
    return pickle.loads(payload)


def peek_call_id(payload: bytes | bytearray) -> int | None:
    """Read the call id of a message without building anything of it.

    Requests and replies are tuples whose first item is the call id: the
    first integer opcode after the protocol, frame and mark opcodes.
    """
    try:
        for opcode, arg, _ in pickletools.genops(bytes(payload)):
            if opcode.name in ("BININT", "BININT1", "BININT2", "LONG1"):
                return int(arg)  # type: ignore[arg-type]
            if opcode.name not in ("PROTO", "FRAME", "MARK"):
                return None
    except Exception:  # noqa: BLE001 - garbage is simply not a call id
        return None
    return None


def set_pipe_size(fd: int) -> None:
    """Grow a pipe's kernel buffer so large payloads need fewer wake-ups."""
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def write_frame(fd: int, kind: int, codec: int, payload: bytes) -> None:
    """Write one frame to a blocking descriptor (used in plugin processes)."""
    header = HEADER.pack(kind, codec, len(payload))
    # A small frame goes in one write(2); a large payload is not copied.
    parts = [header + payload] if len(payload) < 65536 else [header, payload]
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


class BlockingFrameReader:
    """Reads frames from a blocking descriptor (used in plugin processes).

    Small frames usually arrive whole, so one ``read`` serves header and
    payload; a large payload is read straight into a buffer of its size.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def read(self) -> tuple[int, int, bytearray | bytes]:
        buffer = self._buffer
        while len(buffer) < HEADER_SIZE:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("pipe closed")
            buffer += chunk
        kind, codec, size = HEADER.unpack_from(buffer)
        end = HEADER_SIZE + size
        if len(buffer) >= end:
            payload = bytes(buffer[HEADER_SIZE:end])
            del buffer[:end]
            return kind, codec, payload
        body = bytearray(size)
        have = len(buffer) - HEADER_SIZE
        body[:have] = buffer[HEADER_SIZE:]
        buffer.clear()
        view = memoryview(body)
        while have < size:
            n = os.readv(self.fd, [view[have:]])
            if n == 0:
                raise EOFError("pipe closed mid-message")
            have += n
        return kind, codec, body


class FrameReader:
    """Non-blocking reader of frames from one descriptor (parent side).

    ``feed()`` reads what the pipe holds and returns the complete frames.  A
    payload is read straight into a buffer of its announced size, so no more
    than ``max_size`` bytes are ever allocated for one message.
    """

    def __init__(self, fd: int, max_size: int) -> None:
        self.fd = fd
        self.max_size = max_size
        self._head = bytearray()
        self._body: bytearray | None = None
        self._kind = 0
        self._codec = 0
        self._got = 0
        self._eof = False

    def feed(self) -> list[tuple[int, int, bytearray]]:
        """Read what the pipe holds, up to the first complete frames; return them.

        It returns as soon as one read completed a frame, so a plugin that
        writes without end is read no faster than its frames are handled, and
        the caller checks its deadlines between calls.  Raises EOFError at end
        of file and WireError on garbage or a frame over the cap.
        """
        if self._eof:
            raise EOFError("plugin closed its reply pipe")
        while True:
            if self._body is None:
                try:
                    chunk = os.read(self.fd, 65536)
                except BlockingIOError:
                    return []
                if not chunk:
                    self._eof = True
                    raise EOFError("plugin closed its reply pipe")
                self._head += chunk
                frames = self._parse()
            else:
                view = memoryview(self._body)[self._got :]
                try:
                    n = os.readv(self.fd, [view])
                except BlockingIOError:
                    return []
                if n == 0:
                    self._eof = True
                    raise EOFError("plugin closed its reply pipe mid-message")
                self._got += n
                if self._got < len(self._body):
                    continue
                frames = [(self._kind, self._codec, self._body)]
                self._body = None
                frames.extend(self._parse())
            if frames:
                return frames

    def _parse(self) -> list[tuple[int, int, bytearray]]:
        frames = []
        head = self._head
        while len(head) >= HEADER_SIZE:
            kind, codec, size = HEADER.unpack_from(head)
            if kind not in KIND_NAMES or codec not in (CODEC_PICKLE, CODEC_DILL):
                raise WireError(
                    f"garbage on the reply pipe (header {bytes(head[:6])!r})"
                )
            if size > self.max_size:
                raise WireError(
                    f"message of {size} bytes is over max_message_mb "
                    f"({self.max_size} bytes)"
                )
            end = HEADER_SIZE + size
            if len(head) >= end:
                frames.append((kind, codec, head[HEADER_SIZE:end]))
                del head[:end]
                continue
            body = bytearray(size)
            have = len(head) - HEADER_SIZE
            body[:have] = head[HEADER_SIZE:]
            head.clear()
            self._body, self._kind, self._codec, self._got = body, kind, codec, have
            break
        return frames


def write_frame_nonblocking(
    fd: int, kind: int, codec: int, payload: bytes, deadline: float | None
) -> None:
    """Write one frame to a non-blocking descriptor, waiting at most until deadline.

    Raises TimeoutError when the reader does not take the bytes in time and
    BrokenPipeError when it is gone.
    """
    header = HEADER.pack(kind, codec, len(payload))
    if len(payload) < 65536:
        # Small frames nearly always fit in the pipe at once: one syscall.
        frame = header + payload
        try:
            written = os.write(fd, frame)
        except BlockingIOError:
            written = 0
        if written == len(frame):
            return
        header, payload = frame[written:], b""
    chunks = (
        [memoryview(header), memoryview(payload)] if payload else [memoryview(header)]
    )
    poller = None
    while chunks:
        try:
            written = os.writev(fd, chunks)
        except BlockingIOError:
            written = 0
        while written and chunks:
            if written >= len(chunks[0]):
                written -= len(chunks[0])
                chunks.pop(0)
            else:
                chunks[0] = chunks[0][written:]
                written = 0
        if not chunks:
            return
        if poller is None:
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
        wait_ms = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("plugin process did not read its request in time")
            wait_ms = poll_ms(left)
        try:
            events = poller.poll(wait_ms)
        except InterruptedError:
            continue
        for _, mask in events:
            if mask & (select.POLLERR | select.POLLHUP):
                raise BrokenPipeError(errno.EPIPE, "plugin request pipe closed")
