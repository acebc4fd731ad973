"""The plugin processes of one Rigger: concurrent start, restart policy, stop."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import select
import sys
import time
from collections.abc import Callable
from typing import Any

import dill

from . import wire
from ._child import Boot
from .config import InstanceSettings, Settings
from .errors import ConfigError, HookError, PluginCrashed, RiggerError
from .output import OutputPump
from .process import PluginProcess, describe_exit
from .stats import InstanceStats

log = logging.getLogger("rigger_sandbox")
_plugin_log = logging.getLogger("rigger_sandbox.plugin")

_STOP_PAYLOAD = wire.encode(())[1]  # the STOP request has no arguments


class Supervisor:
    """Starts one process per enabled instance and keeps the restart policy.

    Args:
        settings: the validated configuration.
        plugins: the classes given to ``register_plugin``, by name.
        configure: encoded ``configure_plugin`` arguments by ident, replayed
            at every start of that instance.
        on_failure: called with each failure to restart a process.
    """

    def __init__(
        self,
        settings: Settings,
        plugins: dict[str, type],
        configure: dict[str, tuple[int, bytes]],
        on_failure: Callable[[RiggerError], None],
    ) -> None:
        self.settings = settings
        self.on_failure = on_failure
        self.pump = OutputPump()
        self.procs: dict[str, PluginProcess] = {}
        self.stats: dict[str, InstanceStats] = {}
        context = _context(settings.start_method)
        max_message = int(settings.max_message_mb * 1024 * 1024)
        for inst in settings.instances:
            if inst.enabled:
                boot = _boot(inst, settings, plugins, configure, max_message)
                self.procs[inst.ident] = PluginProcess(inst, boot, context, self.pump)
                self.stats[inst.ident] = InstanceStats()

    def start(self) -> None:
        """Start every process concurrently; raise the first failure."""
        try:
            failures = self._launch_all(list(self.procs.values()))
            if failures:
                raise failures[0][1]
        except BaseException:
            self.stop(grace=1.0)
            raise

    def stop(self, grace: float) -> None:
        """Ask every process to stop, then escalate; close the output pump."""
        procs = [p for p in self.procs.values() if p.process is not None]
        # Ask them all first, so that they wind down in parallel.
        for proc in procs:
            try:
                proc.send(
                    wire.STOP, wire.CODEC_PICKLE, _STOP_PAYLOAD, time.monotonic() + 0.2
                )
            except (OSError, TimeoutError):
                pass
        for proc in procs:
            proc.stop(grace, ask=False)
        for proc in self.procs.values():
            if proc.state != "disabled":
                proc.state = "stopped"
        self.pump.close(2.0)

    def ensure_running(self, procs: list[PluginProcess]) -> bool:
        """Restart the crashed processes among ``procs`` (lazily, before a hook).

        Returns whether every one of ``procs`` is running afterwards.
        """
        dead = [p for p in procs if p.state == "restarting"]
        if dead:
            for proc in dead:
                log.warning(
                    "plugin %r: restarting its process (last pid %s)",
                    proc.ident,
                    proc.pid,
                )
                self.stats[proc.ident].restarts += 1
            for proc, error in self._launch_all(dead):
                self.stats[proc.ident].record(0.0, getattr(error, "kind", "crash"))
                self.note_crash(proc)
                self.on_failure(error)
        return all(p.state == "running" for p in procs)

    def note_crash(self, proc: PluginProcess) -> None:
        """Count a crash against the restart policy; disable past the limit.

        A process is counted once, however many calls its death failed.
        """
        if proc.counted_start == proc.starts:
            return
        proc.counted_start = proc.starts
        now = time.monotonic()
        window = proc.settings.restart_window_s
        proc.crash_times.append(now)
        while proc.crash_times and proc.crash_times[0] < now - window:
            proc.crash_times.popleft()
        if len(proc.crash_times) > proc.settings.max_restarts:
            proc.state = "disabled"
            if proc.process is not None:
                proc.kill()
            log.error(
                "plugin %r disabled for the rest of the run: %d crashes "
                "within %s s (max_restarts=%d)",
                proc.ident,
                len(proc.crash_times),
                window,
                proc.settings.max_restarts,
            )
        elif proc.state == "running":
            proc.state = "restarting"

    def _launch_all(
        self, procs: list[PluginProcess]
    ) -> list[tuple[PluginProcess, RiggerError]]:
        """Start processes concurrently; wait for each READY; return failures."""
        failures: list[tuple[PluginProcess, RiggerError]] = []
        for proc in procs:
            proc.launch()
        limit = self.settings.startup_timeout_s
        deadline = time.monotonic() + limit
        # Each process reports READY (or FATAL) on its reply pipe; its pidfd
        # tells of a death before that even if its children hold the pipe.
        waiting: dict[int, PluginProcess] = {}
        poller = select.poll()
        for proc in procs:
            if proc.reader is not None:
                for fd in (proc.reader.fd, proc.pidfd):
                    waiting[fd] = proc
                    poller.register(fd, select.POLLIN)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                text = f"did not run plugin_initialize within {limit} s"
                for proc in {id(p): p for p in waiting.values()}.values():
                    late = self._startup_failure(proc, text + " (startup_timeout_s)")
                    failures.append((proc, late))
                break
            for fd, _ in poller.poll(wire.poll_ms(left)):
                owner = waiting.get(fd)
                if owner is None:
                    continue
                done, error = self._read_ready(owner, exited=fd == owner.pidfd)
                if not done:
                    continue
                for owned in [f for f, p in waiting.items() if p is owner]:
                    poller.unregister(owned)
                    del waiting[owned]
                if error is not None:
                    failures.append((owner, error))
        return failures

    def _read_ready(
        self, proc: PluginProcess, exited: bool
    ) -> tuple[bool, RiggerError | None]:
        """Handle what a starting process sent: (finished starting, error)."""
        assert proc.reader is not None
        try:
            frames = proc.reader.feed()
        except (EOFError, wire.WireError) as exc:
            status = proc.exit_status(2.0)
            return True, self._startup_failure(proc, f"{exc}; {describe_exit(status)}")
        if not frames:
            if not exited:
                return False, None
            status = proc.exit_status(2.0)
            text = f"the process ended before READY: {describe_exit(status)}"
            return True, self._startup_failure(proc, text)
        kind, codec, payload = frames[0]
        try:
            message = wire.decode(codec, payload, trusted=proc.settings.trusted)
            if kind == wire.READY:
                proc.set_ready(message[1])
                return True, None
            if kind == wire.FATAL:
                stage, text, tb = message
        except Exception as exc:  # noqa: BLE001 - anything malformed
            text = f"malformed start message ({type(exc).__name__}: {exc})"
            return True, self._startup_failure(proc, text)
        if kind != wire.FATAL:
            return True, self._startup_failure(proc, "unexpected message before READY")
        proc.kill_for_restart()
        if stage == "load":
            return True, ConfigError(
                f"plugin class could not be loaded in its process: {text}\n{tb}",
                source=self.settings.source,
                key=f"plugins.{proc.ident}.plugin",
            )
        return True, PluginCrashed(
            f"plugin_initialize failed: {text}",
            ident=proc.ident,
            hook="plugin_initialize",
            remote_traceback=tb,
        )

    def _startup_failure(self, proc: PluginProcess, text: str) -> HookError:
        status = proc.kill_for_restart()
        if status == 1 and self.settings.start_method != "fork":
            text += (
                " (under spawn and forkserver each plugin process imports the "
                "main module: guard the script's code with "
                "'if __name__ == \"__main__\":'; the plugin's stderr, in the "
                "log, has the details)"
            )
        return PluginCrashed(
            f"plugin process failed to start: {text}",
            ident=proc.ident,
            hook="plugin_initialize",
            exitcode=status if status and status > 0 else None,
            signal=-status if status and status < 0 else None,
        )


def _context(method: str) -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # Children fork from a server that already imported the sandbox.
        # '__main__' stays in the list (multiprocessing's default) so the
        # main module is imported once, in the server, not in every child.
        context.set_forkserver_preload(["__main__", "rigger_sandbox._child"])
    return context


def _boot(
    inst: InstanceSettings,
    settings: Settings,
    plugins: dict[str, type],
    configure: dict[str, tuple[int, bytes]],
    max_message: int,
) -> Boot:
    ref = inst.plugin
    if ref.kind == "registered":
        source = _class_source(plugins[ref.name])
    else:
        source = (ref.kind, ref.name, ref.attr)
    return Boot(
        ident=inst.ident,
        data=inst.data,
        source=source,
        trusted=inst.trusted,
        max_message=max_message,
        max_nested_events=settings.max_nested_events,
        log_level=_plugin_log.getEffectiveLevel(),
        memory_limit_mb=inst.memory_limit_mb,
        cpu_limit_s=inst.cpu_limit_s,
        max_open_files=inst.max_open_files,
        cwd=inst.cwd,
        env=inst.env,
        configure=configure.get(inst.ident),
    )


def _class_source(cls: type) -> tuple:
    """Ship a class by reference when its process can import it, else by value."""
    module, qualname = cls.__module__, cls.__qualname__
    if module != "__main__" and "<locals>" not in qualname:
        try:
            found: Any = sys.modules.get(module) or importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
            if found is cls:
                return ("ref", module, qualname)
        except Exception:  # noqa: BLE001 - fall back to shipping it by value
            pass
    return ("value", dill.dumps(cls, recurse=True))
