"""Forwarding of plugin stdout, stderr and log records to the parent's logging.

One daemon thread per Rigger reads every plugin's output pipes with a
selector.  Output is cut into lines, and lines longer than ``CHUNK`` into
chunks, so a plugin that floods its output costs bounded memory here.  Lines
the plugin's logging handler tagged carry their level and logger name.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading

from ._child import LOG_MARK, LOG_NEWLINE, LOG_SEP

CHUNK = 8192
_READ = 65536

log = logging.getLogger("rigger_sandbox.output")


class _Stream:
    __slots__ = ("ident", "pid", "name", "logger", "pending")

    def __init__(self, ident: str, pid: int, name: str) -> None:
        self.ident = ident
        self.pid = pid
        self.name = name
        self.logger = logging.getLogger(f"rigger_sandbox.plugin.{ident}")
        self.pending = bytearray()


class OutputPump:
    """Reads plugin output pipes and forwards complete lines to logging."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending_add: list[tuple[int, _Stream]] = []
        self._open = 0
        self._closing = False
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(
            target=self._run, name="rigger-output", daemon=True
        )
        self._thread.start()

    def add(self, fd: int, ident: str, pid: int, name: str) -> None:
        """Start forwarding ``fd``; the pump closes it at end of file."""
        os.set_blocking(fd, False)
        with self._lock:
            self._pending_add.append((fd, _Stream(ident, pid, name)))
            self._open += 1
        os.write(self._wake_w, b"x")

    def drain(self, timeout: float) -> bool:
        """Wait until every added pipe reached end of file; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._open == 0, timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Forward what is left (bounded by ``timeout``), then stop the thread."""
        self.drain(timeout)
        with self._lock:
            self._closing = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout)
        if not self._thread.is_alive():
            for key in list(self._selector.get_map().values()):
                if key.fd != self._wake_r:
                    os.close(key.fd)
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    if self._wake():
                        return
                    continue
                self._read(key.fd, key.data)

    def _wake(self) -> bool:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        with self._lock:
            for fd, stream in self._pending_add:
                self._selector.register(fd, selectors.EVENT_READ, stream)
            self._pending_add.clear()
            return self._closing

    def _read(self, fd: int, stream: _Stream) -> None:
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if stream.pending:
                self._emit(stream, bytes(stream.pending))
            self._selector.unregister(fd)
            os.close(fd)
            with self._idle:
                self._open -= 1
                self._idle.notify_all()
            return
        buffer = stream.pending
        buffer += data
        start = 0
        while True:
            end = buffer.find(b"\n", start, start + CHUNK + 1)
            if end >= 0:
                self._emit(stream, bytes(buffer[start:end]))
                start = end + 1
            elif len(buffer) - start > CHUNK:
                self._emit(stream, bytes(buffer[start : start + CHUNK]))
                start += CHUNK
            else:
                break
        del buffer[:start]

    def _emit(self, stream: _Stream, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if text.startswith(LOG_MARK):
            parts = text[1:].split(LOG_SEP, 2)
            if len(parts) == 3 and parts[0].isdigit():
                level, name, message = int(parts[0]), parts[1], parts[2]
                if stream.logger.isEnabledFor(level):
                    stream.logger.log(
                        level,
                        "[%s pid %d] %s: %s",
                        stream.ident,
                        stream.pid,
                        name,
                        message.replace(LOG_NEWLINE, "\n"),
                        extra={"ident": stream.ident, "pid": stream.pid},
                    )
                return
        if stream.logger.isEnabledFor(logging.INFO):
            stream.logger.info(
                "[%s pid %d %s] %s",
                stream.ident,
                stream.pid,
                stream.name,
                text,
                extra={"ident": stream.ident, "pid": stream.pid},
            )
