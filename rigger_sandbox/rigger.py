"""Orchestration: the Rigger, its phases, failures, nested and background events.

Data flow of one ``fire_hook`` (all in the calling thread, under the event lock)::

    kwargs ──> local namespace (+ 'config')
      │
      ├─ pre-callbacks      run here, in registration order; updates merged
      ├─ plugin hooks       selected arguments pickled ──> request pipe of each
      │                     plugin process (all at once when threaded) ──> one
      │                     poll over the reply pipes ──> replies decoded
      │                     (allow-list unless trusted) ──> updates merged in
      │                     configuration order
      ├─ post-callbacks     run here; skipped when a failure is raised
      └─ nested events      fired by hooks, run in request order, then return

Background hooks are sent without waiting.  Their replies are read by whoever
reads that plugin's pipe next: an event in progress, or the background
collector thread, which takes the event lock before it merges anything, so a
background update never lands half-way through an event's merge.
"""

from __future__ import annotations

import atexit
import collections
import importlib
import logging
import multiprocessing
import multiprocessing.util  # noqa: F401 - see _shutdown_all
import os
import select
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import dill

from . import calls, wire
from ._child import Boot
from .calls import Call
from .config import InstanceSettings, Settings, build_settings, read_config
from .errors import (
    ConfigError,
    HookError,
    NestedEventError,
    PluginCrashed,
    RiggerError,
    RiggerStateError,
)
from .namespaces import BadReturnValue, CallSpec, MissingArguments, split_result
from .output import OutputPump
from .process import PluginProcess, describe_exit
from .stats import InstanceStats

log = logging.getLogger("rigger_sandbox")
_plugin_log = logging.getLogger("rigger_sandbox.plugin")

_live: weakref.WeakSet[Rigger] = weakref.WeakSet()


class ArgumentError(RiggerError, TypeError):
    """fire_hook was given an argument that cannot be sent to a plugin process."""


class _Callback:
    __slots__ = ("func", "spec")

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.spec = CallSpec.of(func)


class Rigger:
    """An event-hook framework whose plugin instances each run in a process.

    Args:
        config_file: path of a YAML configuration file.
        config: the configuration as a mapping, instead of a file.
    """

    def __init__(
        self,
        config_file: str | os.PathLike | None = None,
        *,
        config: Mapping | None = None,
    ) -> None:
        self.config_file = config_file
        self.config: dict = dict(config) if isinstance(config, Mapping) else {}
        self._config_arg = config
        self.global_data: dict = {}
        self.plugins: dict[str, type] = {}
        self.pre_callbacks: dict[str, dict[str, _Callback]] = {}
        self.post_callbacks: dict[str, dict[str, _Callback]] = {}
        self._settings: Settings | None = None
        self._procs: dict[str, PluginProcess] = {}
        self._stats: dict[str, InstanceStats] = {}
        self._configure: dict[str, tuple[int, bytes]] = {}
        self._state = "new"
        self._lock = threading.RLock()
        self._pump: OutputPump | None = None
        self._bg_wake: tuple[int, int] | None = None
        self._bg_thread: threading.Thread | None = None
        self._anon = 0

    # -- registration -----------------------------------------------------

    def register_plugin(self, cls: type, plugin_name: str) -> None:
        """Register a plugin class under the name configuration entries use."""
        if not isinstance(plugin_name, str) or not plugin_name:
            raise RiggerError(
                f"plugin name must be a non-empty string, got {plugin_name!r}"
            )
        if not isinstance(cls, type):
            raise RiggerError(f"register_plugin needs a class, got {cls!r}")
        if plugin_name in self.plugins and self.plugins[plugin_name] is not cls:
            raise RiggerError(
                f"plugin name {plugin_name!r} is already registered "
                f"for {self.plugins[plugin_name]!r}"
            )
        self.plugins[plugin_name] = cls

    def register_hook_callback(
        self,
        hook_name: str,
        ctype: str = "pre",
        callback: Callable[..., Any] | None = None,
        name: str | None = None,
    ) -> str:
        """Run ``callback`` in this process before ('pre') or after ('post') a hook.

        Returns the callback's name, which ``unregister_hook_callback`` takes.
        """
        table = self._callback_table(ctype)
        if not isinstance(hook_name, str) or not hook_name:
            raise RiggerError(
                f"hook name must be a non-empty string, got {hook_name!r}"
            )
        if not callable(callback):
            raise RiggerError(
                f"callback for {hook_name!r} must be callable, got {callback!r}"
            )
        with self._lock:
            if name is None:
                self._anon += 1
                name = f"{getattr(callback, '__qualname__', 'callback')}#{self._anon}"
            # Copy on write: an event in progress keeps the list it started with.
            entries = dict(table.get(hook_name, {}))
            entries[name] = _Callback(callback)
            table[hook_name] = entries
        return name

    def unregister_hook_callback(self, hook_name: str, ctype: str, name: str) -> None:
        """Remove a callback registered under ``name``."""
        table = self._callback_table(ctype)
        with self._lock:
            entries = dict(table.get(hook_name, {}))
            if name not in entries:
                raise RiggerError(
                    f"no {ctype}-callback named {name!r} for hook "
                    f"{hook_name!r}; registered: {sorted(entries)}"
                )
            del entries[name]
            table[hook_name] = entries

    def _callback_table(self, ctype: str) -> dict[str, dict[str, _Callback]]:
        if ctype == "pre":
            return self.pre_callbacks
        if ctype == "post":
            return self.post_callbacks
        raise RiggerError(f"callback type must be 'pre' or 'post', got {ctype!r}")

    def configure_plugin(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Run ``configure(*args, **kwargs)`` in the instance's process.

        Before ``start()`` the call is remembered and made at start.  It is
        made again whenever the process restarts.
        """
        try:
            encoded = wire.encode((args, kwargs))
        except Exception as exc:
            raise ArgumentError(
                f"configure_plugin({name!r}): arguments cannot be serialized: {exc}"
            ) from exc
        with self._lock:
            if self._state != "running":
                self._configure[name] = encoded
                return
            proc = self._procs.get(name)
            if proc is None:
                known = sorted(self._procs)
                raise RiggerError(
                    f"configure_plugin: no enabled instance {name!r}; "
                    f"enabled instances: {known}"
                )
            self._configure[name] = encoded
            proc.boot.configure = encoded
            if not self._ensure_running([proc]):
                raise PluginCrashed(
                    "the plugin is disabled", ident=name, hook="configure"
                )
            call = Call(
                proc, "configure", wire.CONFIGURE, 0, b"", timeout=proc.settings.timeout
            )
            call.codec, call.payload = wire.encode((call.call_id, args, kwargs))
            if calls.send(call):
                calls.wait([call], self._on_background)
            if call.error is not None:
                self._account(call)
                raise call.error

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Rigger:
        """Validate the configuration and start one process per enabled instance."""
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RiggerStateError("this Rigger was shut down; create a new one")
            raw, source = read_config(self.config_file, self._config_arg)
            settings = build_settings(raw, source, self.plugins)
            self._settings = settings
            self.config = raw
            context = self._context(settings.start_method)
            self._pump = OutputPump()
            max_message = int(settings.max_message_mb * 1024 * 1024)
            for inst in settings.instances:
                if not inst.enabled:
                    continue
                boot = self._boot(inst, settings, max_message)
                self._procs[inst.ident] = PluginProcess(inst, boot, context, self._pump)
                self._stats[inst.ident] = InstanceStats()
            try:
                self._launch_all(list(self._procs.values()), settings, initial=True)
            except BaseException:
                self._stop_processes(grace=1.0)
                self._pump.close(1.0)
                self._state = "stopped"
                raise
            self._state = "running"
            _live.add(self)
            log.debug(
                "rigger started %d plugin processes (%s)",
                len(self._procs),
                settings.start_method,
            )
        return self

    def shutdown(self, timeout: float | None = None) -> None:
        """Wait for background hooks, then stop every plugin process.

        Args:
            timeout: seconds to wait for outstanding background hooks (each is
                also bounded by its own hook timeout); ``None`` waits for them.
        """
        with self._lock:
            if self._state != "running":
                self._state = "stopped"
                return
            procs = [p for p in self._procs.values() if p.background]
            if procs:
                until = None if timeout is None else time.monotonic() + timeout
                calls.wait(
                    [],
                    self._on_background,
                    until=until or float("inf"),
                    background=procs,
                )
            self._state = "stopped"
            self._stop_processes(grace=2.0)
            if self._bg_wake is not None:
                os.write(self._bg_wake[1], b"x")
        if self._bg_thread is not None:
            self._bg_thread.join(5.0)
        if self._bg_wake is not None:
            for fd in self._bg_wake:
                os.close(fd)
            self._bg_wake = None
        if self._pump is not None:
            self._pump.close(2.0)
        _live.discard(self)
        log.debug("rigger shut down")

    def __enter__(self) -> Rigger:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _context(self, method: str) -> multiprocessing.context.BaseContext:
        context = multiprocessing.get_context(method)
        if method == "forkserver":
            # Children fork from a server that already imported the sandbox.
            # '__main__' stays in the list (multiprocessing's default) so the
            # main module is imported once, in the server, not in every child.
            context.set_forkserver_preload(["__main__", "rigger_sandbox._child"])
        return context

    def _boot(
        self, inst: InstanceSettings, settings: Settings, max_message: int
    ) -> Boot:
        ref = inst.plugin
        if ref.kind == "registered":
            source = _class_source(self.plugins[ref.name])
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
            configure=self._configure.get(inst.ident),
        )

    def _launch_all(
        self, procs: list[PluginProcess], settings: Settings, initial: bool
    ) -> list[tuple[PluginProcess, RiggerError]]:
        """Start processes concurrently and wait for each READY.

        At the first start a failure raises; on a restart it is returned.
        """
        failures: list[tuple[PluginProcess, RiggerError]] = []
        for proc in procs:
            proc.launch()
        deadline = time.monotonic() + settings.startup_timeout_s
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
                for proc in {id(p): p for p in waiting.values()}.values():
                    text = (
                        "did not finish plugin_initialize within "
                        f"startup_timeout_s ({settings.startup_timeout_s} s)"
                    )
                    failures.append((proc, self._startup_failure(proc, text)))
                break
            for fd, _ in poller.poll(int(left * 1000) + 1):
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
        if initial and failures:
            raise failures[0][1]
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
        except Exception as exc:  # noqa: BLE001 - anything undecodable
            return True, self._startup_failure(
                proc, f"undecodable start message: {exc}"
            )
        if kind == wire.READY:
            try:
                proc.set_ready(message[1])
            except Exception as exc:  # noqa: BLE001 - a malformed hook table
                return True, self._startup_failure(proc, f"malformed hook table: {exc}")
            return True, None
        if kind == wire.FATAL:
            stage, text, tb = message
            proc.kill()
            if stage == "load":
                source = self._settings.source if self._settings else None
                return True, ConfigError(
                    f"plugin class could not be loaded in its process: {text}\n{tb}",
                    source=source,
                    key=f"plugins.{proc.ident}.plugin",
                )
            return True, PluginCrashed(
                f"plugin_initialize failed: {text}",
                ident=proc.ident,
                hook="plugin_initialize",
                remote_traceback=tb,
            )
        return True, self._startup_failure(proc, "unexpected message before READY")

    def _startup_failure(self, proc: PluginProcess, text: str) -> HookError:
        status = proc.kill()
        if status == 1 and self._settings and self._settings.start_method != "fork":
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

    def _stop_processes(self, grace: float) -> None:
        procs = [p for p in self._procs.values() if p.process is not None]
        for proc in procs:
            try:
                proc.send(
                    wire.STOP, wire.CODEC_PICKLE, _STOP_PAYLOAD, time.monotonic() + 0.2
                )
            except (OSError, TimeoutError):
                pass
        for proc in procs:
            proc.stop(grace)
            if proc.state != "disabled":
                proc.state = "stopped"

    def _ensure_running(self, procs: list[PluginProcess]) -> bool:
        """Restart crashed processes among ``procs`` (lazily, before their hook)."""
        dead = [p for p in procs if p.state == "restarting"]
        if not dead:
            return all(p.state == "running" for p in procs)
        assert self._settings is not None
        for proc in dead:
            log.warning(
                "plugin %r: restarting its process (last pid %s)", proc.ident, proc.pid
            )
            self._stats[proc.ident].restarts += 1
        for proc, error in self._launch_all(dead, self._settings, initial=False):
            self._stats[proc.ident].record(0.0, getattr(error, "kind", "crash"))
            self._note_crash(proc)
            self._failure(error)
        return all(p.state == "running" for p in procs)

    def _note_crash(self, proc: PluginProcess) -> None:
        """Count a crash against the restart policy; disable past the limit."""
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

    # -- events -----------------------------------------------------------

    def fire_hook(
        self, hook_name: str, /, grab_result: bool = False, **kwargs: Any
    ) -> dict | None:
        """Fire an event: pre-callbacks, every enabled plugin's hook, post-callbacks.

        Returns ``{**global_namespace, **local_namespace}`` at the end of the
        event when ``grab_result`` is true, else ``None``.
        """
        local, _ = self._fire(hook_name, kwargs)
        if grab_result:
            return {**self.global_data, **local}
        return None

    def process_hook(self, hook_name: str, /, **kwargs: Any) -> tuple[dict, dict]:
        """Fire an event; return its ``(local_namespace, global_namespace)``."""
        return self._fire(hook_name, kwargs)

    def _fire(self, hook_name: str, kwargs: dict) -> tuple[dict, dict]:
        if not isinstance(hook_name, str) or not hook_name:
            raise ArgumentError(
                f"hook name must be a non-empty string, got {hook_name!r}"
            )
        with self._lock:
            if self._state != "running":
                raise RiggerStateError(
                    "fire_hook before start()"
                    if self._state == "new"
                    else "fire_hook after shutdown()"
                )
            assert self._settings is not None
            settings = self._settings
            queue = _NestedQueue(hook_name, settings)
            local = self._event(hook_name, kwargs, queue, depth=0)
            while queue.items:
                name, nested_kwargs, depth = queue.items.popleft()
                self._event(name, nested_kwargs, queue, depth)
            return local, self.global_data

    def _event(self, name: str, kwargs: dict, queue: _NestedQueue, depth: int) -> dict:
        settings = self._settings
        assert settings is not None
        local = dict(kwargs)
        local["config"] = self.config
        self._phase_callbacks(name, self.pre_callbacks.get(name), local)
        nested = self._phase_hooks(name, local)
        self._phase_callbacks(name, self.post_callbacks.get(name), local)
        for event, event_kwargs in nested:
            error = queue.add(event, event_kwargs, depth + 1)
            if error is not None:
                self._failure(error)
        return local

    def _phase_callbacks(
        self, name: str, entries: dict[str, _Callback] | None, local: dict
    ) -> None:
        if not entries:
            return
        updates = []
        errors = []
        for callback in entries.values():
            try:
                kwargs = callback.spec.select(local, self.global_data)
                result = callback.func(**kwargs)
                updates.append(split_result(callback.spec.name, result))
            except Exception as exc:  # noqa: BLE001 - squashed or raised below
                errors.append(_callback_error(name, callback, exc))
        self._merge(local, updates)
        self._raise_or_squash(errors)

    def _phase_hooks(self, name: str, local: dict) -> list:
        targets = [
            p
            for p in self._procs.values()
            if name in p.hooks and p.state in ("running", "restarting")
        ]
        if not targets:
            return []
        if not self._ensure_running(targets):
            targets = [p for p in targets if p.state == "running" and name in p.hooks]
        assert self._settings is not None
        threaded = self._settings.threaded
        pending: list[Call] = []
        background: list[Call] = []
        errors: list[HookError] = []
        for proc in targets:
            info = proc.hooks.get(name)
            if info is None:
                continue
            try:
                selected = info.spec.select(local, self.global_data)
            except MissingArguments as exc:
                errors.append(HookError(str(exc), ident=proc.ident, hook=name))
                self._stats[proc.ident].record(0.0, "exception")
                continue
            call = Call(proc, name, wire.CALL, 0, b"", info.timeout)
            call.codec, call.payload = _encode_request(call, selected)
            if info.bg:
                background.append(call)
            else:
                pending.append(call)
        # Everything is encoded before anything is sent: an argument that
        # cannot be serialized fails the event before any plugin sees it.
        for call in background:
            self._send_background(call)
        if threaded:
            for call in pending:
                calls.send(call)
            calls.wait(pending, self._on_background)
        else:
            for call in pending:
                if calls.send(call):
                    calls.wait([call], self._on_background)
        updates = []
        nested: list = []
        for call in pending:
            self._account(call)
            if call.error is not None:
                errors.append(call.error)
                continue
            updates.append((call.local, call.global_))
            nested.extend(call.nested)
        self._merge(local, updates)
        self._raise_or_squash(errors)
        return nested

    def _account(self, call: Call) -> None:
        error = call.error
        self._stats[call.proc.ident].record(call.elapsed, error.kind if error else None)
        if error is not None and error.kind in (
            "crash",
            "timeout",
            "limit",
            "protocol",
        ):
            self._note_crash(call.proc)

    def _merge(self, local: dict, updates: list) -> None:
        from .namespaces import recursive_update

        for local_updates, global_updates in updates:
            if local_updates:
                recursive_update(local, local_updates)
            if global_updates:
                recursive_update(self.global_data, global_updates)

    def _raise_or_squash(self, errors: list) -> None:
        if not errors:
            return
        assert self._settings is not None
        if self._settings.squash_exceptions:
            for error in errors:
                self._failure(error)
            return
        for error in errors[1:]:
            log.warning("also failed in the same phase: %s", error)
        raise errors[0]

    def _failure(self, error: RiggerError) -> None:
        assert self._settings is not None
        if self._settings.squash_exceptions:
            self.handle_failure(error)
        else:
            raise error

    # -- background hooks -------------------------------------------------

    def _send_background(self, call: Call) -> None:
        proc = call.proc
        if not calls.send(call):
            self._account(call)
            self._failure(call.error)  # type: ignore[arg-type]
            return
        proc.background[call.call_id] = (call.hook, call.deadline, call.started)
        self._wake_collector()

    def _on_background(
        self,
        proc: PluginProcess,
        call_id: int,
        message: tuple | None,
        error: HookError | None,
    ) -> None:
        entry = proc.background.pop(call_id, None)
        if entry is None:
            return
        hook, _, started = entry
        stats = self._stats[proc.ident]
        stats.record(time.monotonic() - started, error.kind if error else None)
        if error is not None:
            if error.kind in ("crash", "timeout", "limit", "protocol"):
                self._note_crash(proc)
            if self._settings and self._settings.squash_exceptions:
                self.handle_failure(error)
            else:
                log.error("background hook failed: %s", error)
            return
        assert message is not None
        _, _, global_updates, _ = message
        if global_updates:
            from .namespaces import recursive_update

            recursive_update(self.global_data, global_updates)

    def _wake_collector(self) -> None:
        if self._bg_thread is None:
            self._bg_wake = os.pipe()
            os.set_blocking(self._bg_wake[0], False)
            self._bg_thread = threading.Thread(
                target=self._collect_background, name="rigger-background", daemon=True
            )
            self._bg_thread.start()
        else:
            assert self._bg_wake is not None
            os.write(self._bg_wake[1], b"x")

    def _collect_background(self) -> None:
        """Merge background replies as they arrive, between events."""
        assert self._bg_wake is not None
        wake_r = self._bg_wake[0]
        while True:
            with self._lock:
                if self._state != "running":
                    return
                procs = [p for p in self._procs.values() if p.background and p.reader]
                fds = [fd for p in procs for fd in (p.reader.fd, p.pidfd)]  # type: ignore[union-attr]
                deadlines = [
                    d
                    for p in procs
                    for _, d, _ in p.background.values()
                    if d is not None
                ]
            poller = select.poll()
            poller.register(wake_r, select.POLLIN)
            for fd in fds:
                poller.register(fd, select.POLLIN | select.POLLHUP)
            timeout = None
            if deadlines:
                timeout = max(0, int((min(deadlines) - time.monotonic()) * 1000)) + 1
            try:
                ready = poller.poll(timeout)
            except (InterruptedError, ValueError):
                ready = []
            if any(fd == wake_r for fd, _ in ready):
                try:
                    os.read(wake_r, 4096)
                except (BlockingIOError, OSError):
                    pass
            with self._lock:
                if self._state != "running":
                    return
                procs = [p for p in self._procs.values() if p.background and p.reader]
                if procs:
                    calls.collect_background(procs, self._on_background)

    # -- observability and overridable hooks ------------------------------

    def stats(self) -> dict[str, dict]:
        """Per enabled instance: state, pid, calls, failures, restarts, times."""
        with self._lock:
            return {
                ident: self._stats[ident].snapshot(
                    proc.state, proc.pid if proc.process is not None else None
                )
                for ident, proc in self._procs.items()
            }

    def plugin_pids(self) -> dict[str, int | None]:
        """The pid of each enabled instance's process (None when not running)."""
        with self._lock:
            return {
                ident: proc.pid if proc.process is not None else None
                for ident, proc in self._procs.items()
            }

    def handle_failure(self, error: RiggerError) -> None:
        """Called with each squashed failure; logs it by default.  Override it."""
        log.warning("%s", error)

    def log_message(self, message: object) -> None:
        """Log a message; override it to send messages elsewhere."""
        log.info("%s", message)


_STOP_PAYLOAD = wire.encode(())[1]


class _NestedQueue:
    """The nested events of one top-level event, bounded in depth and number."""

    def __init__(self, top: str, settings: Settings) -> None:
        self.top = top
        self.max_depth = settings.max_nested_depth
        self.max_events = settings.max_nested_events
        self.items: collections.deque = collections.deque()
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


def _encode_request(call: Call, selected: dict) -> tuple[int, bytes]:
    """Encode a hook request; name the argument that cannot be sent."""
    try:
        return wire.encode((call.call_id, call.hook, selected))
    except Exception:  # noqa: BLE001 - find the culprit for the message
        for key, value in selected.items():
            try:
                wire.encode(value)
            except Exception as exc:  # noqa: BLE001
                raise ArgumentError(
                    f"argument {key!r} of hook {call.hook!r} cannot be sent to plugin "
                    f"{call.proc.ident!r}: {type(value).__name__} is not "
                    f"serializable by pickle or dill ({exc})"
                ) from None
        raise


def _callback_error(hook: str, callback: _Callback, exc: Exception) -> HookError:
    if isinstance(exc, (MissingArguments, BadReturnValue)):
        text = str(exc)
    else:
        text = f"callback {callback.spec.name} raised {type(exc).__name__}: {exc}"
    error = HookError(
        text,
        ident=None,
        hook=hook,
        remote_traceback="".join(traceback.format_exception(exc)),
    )
    error.__cause__ = exc
    return error


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


# Registered after multiprocessing's own exit handler (imported above), so it
# runs first: multiprocessing joins non-daemon children at exit, and plugin
# processes only end once they are told to stop.
@atexit.register
def _shutdown_all() -> None:
    for rigger in list(_live):
        try:
            rigger.shutdown(timeout=5.0)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            log.exception("shutdown at exit failed")
