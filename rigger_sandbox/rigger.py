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

Process supervision (start, restart policy, stop) lives in ``supervisor``;
background hooks (sending, merging, their events, the collector thread) live in
``background``.
"""

from __future__ import annotations

import atexit
import collections
import logging
import multiprocessing.util  # noqa: F401 - see _shutdown_all
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from . import calls, replies, wire
from .background import BackgroundCollector, BackgroundHooks
from .callbacks import Callback, CallbackTable, run_callbacks
from .calls import Call
from .config import Settings, build_settings, read_config
from .errors import (
    ArgumentError,
    HookError,
    PluginCrashed,
    RiggerError,
    RiggerStateError,
)
from .namespaces import (
    MissingArguments,
    recursive_update,
)
from .nested import NestedQueue
from .process import PluginProcess
from .supervisor import Supervisor

log = logging.getLogger("rigger_sandbox")

_live: weakref.WeakSet[Rigger] = weakref.WeakSet()


class Rigger(BackgroundHooks):
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
        self.callbacks = CallbackTable()
        self._settings: Settings | None = None
        self._supervisor: Supervisor | None = None
        self._procs: dict[str, PluginProcess] = {}
        self._configure: dict[str, tuple[int, bytes]] = {}
        self._state = "new"
        # One event at a time: fire_hook from many threads is serialised here,
        # and the background collector takes it before merging.
        self._lock = threading.RLock()
        self._collector: BackgroundCollector | None = None
        # Events fired by background hooks, run after the event in progress.
        self._background_nested: collections.deque[tuple[str, dict, int]] = (
            collections.deque()
        )

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

        Callbacks of one kind run in registration order.  Returns the
        callback's name, which ``unregister_hook_callback`` takes.
        """
        with self._lock:
            return self.callbacks.register(hook_name, ctype, callback, name)

    def unregister_hook_callback(self, hook_name: str, ctype: str, name: str) -> None:
        """Remove a callback registered under ``name``."""
        with self._lock:
            self.callbacks.unregister(hook_name, ctype, name)

    @property
    def pre_callbacks(self) -> dict[str, dict[str, Callback]]:
        """Pre-callbacks by event, then by name (read-only view of the table)."""
        return self.callbacks.tables["pre"]

    @property
    def post_callbacks(self) -> dict[str, dict[str, Callback]]:
        """Post-callbacks by event, then by name (read-only view of the table)."""
        return self.callbacks.tables["post"]

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
            assert self._supervisor is not None
            if not self._supervisor.ensure_running([proc]):
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
        """Validate the configuration and start one process per enabled instance.

        Returns when every plugin process has run ``plugin_initialize``.
        """
        with self._lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RiggerStateError("this Rigger was shut down; create a new one")
            raw, source = read_config(self.config_file, self._config_arg)
            settings = build_settings(raw, source, self.plugins)
            supervisor = Supervisor(
                settings, self.plugins, self._configure, self._failure
            )
            self._settings, self.config = settings, raw
            try:
                supervisor.start()
            except BaseException:
                self._state = "stopped"
                raise
            self._supervisor, self._procs = supervisor, supervisor.procs
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
            until = float("inf") if timeout is None else time.monotonic() + timeout
            while True:
                procs = [p for p in self._procs.values() if p.background]
                if procs:
                    calls.wait([], self._on_background, until=until, background=procs)
                if not self._background_nested:
                    break
                if timeout is not None:
                    # An event has no bound of its own (its hooks may have no
                    # timeout): with a bounded shutdown they are not run.
                    log.warning(
                        "shutdown: %d events fired by background hooks dropped",
                        len(self._background_nested),
                    )
                    self._background_nested.clear()
                    break
                self._run_background_nested()
            self._state = "stopped"
        # Outside the lock: the collector takes it to finish its last round.
        if self._collector is not None:
            self._collector.close()
        with self._lock:
            assert self._supervisor is not None
            self._supervisor.stop(grace=2.0)
        _live.discard(self)
        log.debug("rigger shut down")

    def _shutdown_at_exit(self) -> None:
        """Interpreter exit: shut down, or kill if a daemon thread holds an event.

        A daemon thread can be inside ``fire_hook`` waiting on a hook with no
        timeout; it never gives the lock back, and exit must not wait for it.
        """
        if self._lock.acquire(timeout=2.0):
            self._lock.release()
            self.shutdown(timeout=5.0)
            return
        log.warning("exiting while an event is in progress: killing plugin processes")
        self._state = "stopped"
        for proc in list(self._procs.values()):
            proc.kill()
        _live.discard(self)

    def __enter__(self) -> Rigger:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

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
            queue = self._nested_queue(hook_name)
            local = self._event(hook_name, kwargs, queue, depth=0)
            self._run_nested(queue)
            if self._background_nested:
                self._run_background_nested()
            return local, self.global_data

    def _nested_queue(self, top: str) -> NestedQueue:
        assert self._settings is not None
        settings = self._settings
        return NestedQueue(top, settings.max_nested_depth, settings.max_nested_events)

    def _run_nested(self, queue: NestedQueue) -> None:
        while queue.items:
            name, nested_kwargs, depth = queue.items.popleft()
            self._event(name, nested_kwargs, queue, depth)

    def _event(self, name: str, kwargs: dict, queue: NestedQueue, depth: int) -> dict:
        settings = self._settings
        assert settings is not None
        local = dict(kwargs)
        local["config"] = self.config
        self._phase_callbacks(name, self.callbacks.get("pre", name), local)
        nested = self._phase_hooks(name, local, depth)
        self._phase_callbacks(name, self.callbacks.get("post", name), local)
        for event, event_kwargs in nested:
            error = queue.add(event, event_kwargs, depth + 1)
            if error is not None:
                self._failure(error)
        return local

    def _phase_callbacks(
        self, name: str, entries: dict[str, Callback] | None, local: dict
    ) -> None:
        if entries:
            updates, errors = run_callbacks(name, entries, local, self.global_data)
            self._merge(local, updates)
            self._raise_or_squash(errors)

    def _phase_hooks(self, name: str, local: dict, depth: int) -> list:
        targets = [
            p
            for p in self._procs.values()
            if name in p.hooks and p.state in ("running", "restarting")
        ]
        if not targets:
            return []
        assert self._supervisor is not None
        if not self._supervisor.ensure_running(targets):
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
                self._record(proc, 0.0, "exception")
                continue
            call = Call(proc, name, wire.CALL, 0, b"", info.timeout)
            call.codec, call.payload = calls.encode_request(call, selected)
            if info.bg:
                background.append(call)
            else:
                pending.append(call)
        # Everything is encoded before anything is sent: an argument that
        # cannot be serialized fails the event before any plugin sees it.
        for call in background:
            self._send_background(call, depth)
        try:
            if threaded:
                for call in pending:
                    calls.send(call)
                calls.wait(pending, self._on_background)
            else:
                for call in pending:
                    if calls.send(call):
                        calls.wait([call], self._on_background)
        except BaseException:
            # Interrupted (Ctrl-C, or an overridden handle_failure raising):
            # a request in flight would be answered into a later event, so
            # its process is ended and restarts clean.
            self._abandon(pending)
            raise
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

    def _abandon(self, pending: list[Call]) -> None:
        """End the processes of interrupted calls; report their background calls."""
        assert self._supervisor is not None
        for call in pending:
            if not call.started or call.done:
                continue
            proc = call.proc
            proc.kill_for_restart()
            call.done = True
            call.error = PluginCrashed(
                "the event was interrupted while this call was in flight; the "
                "process was killed",
                ident=proc.ident,
                hook=call.hook,
            )
            self._account(call)
            try:
                replies.fail_background(
                    proc,
                    self._on_background,
                    PluginCrashed,
                    "the process was killed when an event was interrupted",
                    None,
                )
            except Exception:  # noqa: BLE001 - the interrupt is what propagates
                log.exception("reporting background calls of %r failed", proc.ident)

    def _account(self, call: Call) -> None:
        """Count a finished call; a crash counts against the restart policy."""
        self._record(call.proc, call.elapsed, call.error)

    def _record(
        self, proc: PluginProcess, seconds: float, error: HookError | str | None
    ) -> None:
        assert self._supervisor is not None
        kind = error if isinstance(error, str) or error is None else error.kind
        self._supervisor.stats[proc.ident].record(seconds, kind)
        if proc.state == "restarting":
            # The call ended the process (whatever the kind of failure: a
            # refused value ends it too): count it against max_restarts.
            self._supervisor.note_crash(proc)

    def _merge(self, local: dict, updates: list) -> None:
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

    # -- observability and overridable hooks ------------------------------

    def stats(self) -> dict[str, dict]:
        """Per enabled instance: state, pid, calls, failures, restarts, times.

        Readable while an event is in progress (it takes no lock: each figure
        is read atomically, the set of them may straddle a call).
        """
        supervisor = self._supervisor
        if supervisor is None:
            return {}
        return {
            ident: supervisor.stats[ident].snapshot(proc.state, _pid(proc))
            for ident, proc in supervisor.procs.items()
        }

    def plugin_pids(self) -> dict[str, int | None]:
        """The pid of each enabled instance's process (None when not running).

        Readable while an event is in progress, like ``stats()``.
        """
        return {ident: _pid(proc) for ident, proc in self._procs.items()}

    def handle_failure(self, error: RiggerError) -> None:
        """Called with each squashed failure; logs it by default.  Override it."""
        log.warning("%s", error)

    def log_message(self, message: object) -> None:
        """Log a message; override it to send messages elsewhere."""
        log.info("%s", message)


def _pid(proc: PluginProcess) -> int | None:
    return proc.pid if proc.process is not None else None


# Registered after multiprocessing's own exit handler (imported above), so it
# runs first: multiprocessing joins non-daemon children at exit, and plugin
# processes only end once they are told to stop.
@atexit.register
def _shutdown_all() -> None:
    for rigger in list(_live):
        try:
            rigger._shutdown_at_exit()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            log.exception("shutdown at exit failed")
