"""Process supervision: start, stop and kill plugin processes and their trees.

The boundary other layers use is small: :meth:`PluginProcess.launch` starts a
plugin instance, :meth:`send` writes one request, :attr:`reader` yields its
replies, :meth:`kill` and :meth:`stop` end it together with every process it
started.  Each plugin process leads its own process group, so one ``killpg``
reaches the descendants that stayed in it; a psutil snapshot taken before the
kill reaches those that left it.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import select
import signal
import time
from typing import Any, NamedTuple

import psutil

from . import wire
from ._child import Boot, PassFd
from ._child import main as child_main
from .config import InstanceSettings
from .errors import signal_name
from .output import OutputPump

log = logging.getLogger("rigger_sandbox.process")

_POLL_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_STOP_PAYLOAD = wire.encode(())[1]

_SIGNAL_CAUSES: dict[int, str] = {
    signal.SIGSEGV: "a segmentation fault, a crash in native code",
    signal.SIGABRT: "an abort, usually a failed assertion in native code",
    signal.SIGKILL: "SIGKILL: killed from outside, or by the kernel's OOM killer",
    signal.SIGTERM: "SIGTERM: asked to terminate from outside",
    signal.SIGXCPU: "SIGXCPU: the CPU-time limit (cpu_limit_s) ran out",
    signal.SIGBUS: "a bus error, a crash in native code",
    signal.SIGFPE: "a floating-point exception in native code",
}


def describe_exit(exitcode: int | None) -> str:
    """Say how a process ended, with the likely cause of a signal."""
    if exitcode is None:
        return "the process ended with an unknown status"
    if exitcode < 0:
        signum = -exitcode
        cause = _SIGNAL_CAUSES.get(signum)
        text = f"the process was killed by {signal_name(signum)}"
        return f"{text} ({cause})" if cause else text
    return f"the process exited with code {exitcode}"


class BackgroundCall(NamedTuple):
    """A background call in flight: its hook, deadline, start and event depth."""

    hook: str
    deadline: float | None
    started: float
    depth: int


class HookInfo:
    """A hook as the parent sees it: what to select and how long it may run."""

    __slots__ = ("spec", "bg", "timeout")

    def __init__(self, spec: Any, bg: bool, timeout: float | None) -> None:
        self.spec = spec
        self.bg = bg
        self.timeout = timeout


class PluginProcess:
    """One plugin instance's process, its pipes and its restart history."""

    def __init__(
        self,
        settings: InstanceSettings,
        boot: Boot,
        context: multiprocessing.context.BaseContext,
        pump: OutputPump,
    ) -> None:
        self.settings = settings
        self.ident = settings.ident
        self.boot = boot
        self.context = context
        self.pump = pump
        self.state = "stopped"
        self.process: Any = None
        self.pid: int | None = None
        self.req_fd = -1
        self.reader: wire.FrameReader | None = None
        self.hooks: dict[str, HookInfo] = {}
        self.next_call = 0
        self.starts = 0
        self.crash_times: collections.deque[float] = collections.deque()
        self.counted_start = 0  # the start whose crash was last counted
        self.background: dict[int, BackgroundCall] = {}
        self.pidfd = -1
        self.poller: Any = None

    # -- starting ---------------------------------------------------------

    def launch(self) -> None:
        """Start the process; its READY or FATAL reply arrives on ``reader``."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (req_w, rep_w):
            wire.set_pipe_size(fd)
        child_fds = (req_r, rep_w, out_w, err_w)
        child_ends = [PassFd(fd) for fd in child_fds]
        process = self.context.Process(  # type: ignore[attr-defined]
            target=child_main,
            args=(self.boot, *child_ends),
            name=f"rigger-plugin-{self.ident}",
            daemon=False,
        )
        try:
            process.start()
        except BaseException:
            for fd in (req_w, rep_r, out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        self.process = process
        self.pid = process.pid
        self.req_fd = req_w
        os.set_blocking(req_w, False)
        os.set_blocking(rep_r, False)
        self.reader = wire.FrameReader(rep_r, self.boot.max_message)
        # The reply pipe alone cannot tell that the process died: anything it
        # forked may hold the pipe open.  A pidfd becomes readable at exit.
        self.pidfd = os.pidfd_open(process.pid)
        self.poller = select.poll()
        self.poller.register(rep_r, _POLL_IN)
        self.poller.register(self.pidfd, _POLL_IN)
        self.pump.add(out_r, self.ident, process.pid, "stdout")
        self.pump.add(err_r, self.ident, process.pid, "stderr")
        self.state = "starting"
        self.starts += 1
        self.next_call = 0
        if self.background:
            log.error(
                "plugin %r: %d background calls lost at restart",
                self.ident,
                len(self.background),
            )
            self.background.clear()
        log.debug("plugin %r: started process pid %d", self.ident, process.pid)

    def set_ready(self, hooks: dict) -> None:
        """Record the hook table a READY message announced."""
        from .namespaces import CallSpec

        # The table comes from the plugin process: check every field's type.
        table = {}
        for event, (params, required, varkw, bg, timeout) in hooks.items():
            if timeout == "inherit":
                timeout = self.settings.timeout
            names = (event, *params, *required)
            if not all(isinstance(name, str) for name in names) or not (
                timeout is None
                or (
                    isinstance(timeout, (int, float))
                    and not isinstance(timeout, bool)
                    and timeout > 0
                )
            ):
                raise ValueError(f"malformed entry for hook {event!r}")
            spec = CallSpec(
                f"{self.ident}.{event}", tuple(params), frozenset(required), bool(varkw)
            )
            table[event] = HookInfo(spec, bool(bg) or self.settings.background, timeout)
        self.hooks = table
        self.state = "running"

    # -- talking ----------------------------------------------------------

    def fds(self) -> tuple[int, ...]:
        """The descriptors to poll for this process: replies and its pidfd."""
        if self.reader is None:
            return ()
        return (self.reader.fd, self.pidfd)

    def new_call_id(self) -> int:
        self.next_call += 1
        return self.next_call

    def send(
        self, kind: int, codec: int, payload: bytes, deadline: float | None
    ) -> None:
        """Write one request; raises TimeoutError or BrokenPipeError."""
        wire.write_frame_nonblocking(self.req_fd, kind, codec, payload, deadline)

    # -- ending -----------------------------------------------------------

    def kill(self) -> int | None:
        """Kill the process and everything it started; return its exit code."""
        if self.process is None:
            return None
        tree = self._descendants()
        try:
            os.killpg(self.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except ProcessLookupError:
            pass
        self._kill_all(tree)
        return self._reap(timeout=5.0)

    def kill_for_restart(self) -> int | None:
        """Kill a process in flight; it is started again before its next hook."""
        if self.process is None:
            return None
        status = self.kill()
        if self.state != "disabled":
            self.state = "restarting"
        return status

    def stop(self, grace: float, ask: bool = True) -> int | None:
        """End the process in escalating steps: ask (STOP), SIGTERM, SIGKILL.

        ``ask=False`` when the STOP request was already sent.
        """
        if self.process is None:
            return None
        if ask:
            try:
                self.send(
                    wire.STOP,
                    wire.CODEC_PICKLE,
                    _STOP_PAYLOAD,
                    time.monotonic() + min(grace, 0.5),
                )
            except (OSError, TimeoutError):
                pass
        self.process.join(grace)
        if self.process.exitcode is None:
            self.process.terminate()
            self.process.join(min(grace, 1.0))
        return self.kill()

    def exit_status(self, timeout: float = 1.0) -> int | None:
        """The exit code of a process that is known to be dying."""
        if self.process is None:
            return None
        self.process.join(timeout)
        return self.process.exitcode

    def _descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []

    @staticmethod
    def _kill_all(tree: list[psutil.Process]) -> None:
        for proc in tree:
            try:
                proc.kill()
            except psutil.Error:
                pass
        # SIGKILL cannot be caught; wait only until each one is gone or a
        # zombie (reparented descendants are reaped by their new parent, not
        # by us), and no longer than a moment.
        deadline = time.monotonic() + 0.5
        left = tree
        while left and time.monotonic() < deadline:
            left = [p for p in left if _still_running(p)]
            if left:
                time.sleep(0.002)

    def _reap(self, timeout: float) -> int | None:
        process = self.process
        process.join(timeout)
        exitcode = process.exitcode
        try:
            os.killpg(self.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except (ProcessLookupError, PermissionError):
            pass
        self._close_fds()
        try:
            process.close()
        except ValueError:
            pass
        self.process = None
        log.debug(
            "plugin %r: process pid %s ended: %s",
            self.ident,
            self.pid,
            describe_exit(exitcode),
        )
        return exitcode

    def _close_fds(self) -> None:
        if self.req_fd >= 0:
            os.close(self.req_fd)
            self.req_fd = -1
        if self.reader is not None:
            os.close(self.reader.fd)
            self.reader = None
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        self.poller = None


def _still_running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
