"""Baselines from other projects: riggerlib 3.1.6 and a Ray actor, when installed.

Both are optional.  :func:`riggerlib_unavailable` and :func:`ray_unavailable`
return the reason a baseline is skipped (``None`` when it can run), so the
report says why a column is empty instead of failing.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from . import hooks
from .baselines import merge_updates, parameter_names, select_args

RIGGERLIB_VERSION = "3.1.6"
THREAD_JOIN_SECONDS = 5.0

_riggerlib: Any = None
_ray_started = False


def _import_riggerlib() -> Any:
    global _riggerlib
    if _riggerlib is None:
        import collections
        import collections.abc

        # riggerlib 3.1.6 does `from collections import Mapping`, which
        # Python 3.10 removed; the alias exists only in this runner process.
        for name in ("Mapping", "MutableMapping", "Sequence", "Callable"):
            if not hasattr(collections, name):
                setattr(collections, name, getattr(collections.abc, name))
        import riggerlib

        _riggerlib = riggerlib
    return _riggerlib


def riggerlib_unavailable() -> str | None:
    """Why riggerlib cannot be measured here, or ``None`` when it can."""
    try:
        _import_riggerlib()
    except ImportError as error:
        return (
            f"riggerlib {RIGGERLIB_VERSION} not importable ({error}); "
            "install the bench extra: pip install -e '.[bench]'"
        )
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("riggerlib")
    except PackageNotFoundError:
        found = "unknown"
    if found != RIGGERLIB_VERSION:
        return f"riggerlib {found} installed, the baseline is {RIGGERLIB_VERSION}"
    return None


class Riggerlib:
    """riggerlib's own Rigger, in process, with N instances of one hook.

    riggerlib's ``parse_config`` reads YAML with ``yaml.load`` and no loader,
    which PyYAML 6 rejects (riggerlib then exits the process), so the
    configuration file is read with ``yaml.safe_load`` and the rest of
    ``parse_config`` (instance setup, server start) is called as it would be.
    """

    def __init__(
        self,
        count: int,
        threaded: bool,
        hook_func: Callable[..., Any],
        event: str,
        pre: Sequence[Callable[..., Any]] = (),
    ) -> None:
        riggerlib = _import_riggerlib()
        plugin_cls = _riggerlib_plugin(riggerlib, event, hook_func)
        before = set(threading.enumerate())
        self.rig = riggerlib.Rigger(self._write_config(count, threaded))
        # Rigger.__init__ starts two queue threads that poll forever; they are
        # stopped through riggerlib's own shutdown flags in close().
        self.threads = [t for t in threading.enumerate() if t not in before]
        try:
            self.rig.register_plugin(plugin_cls, "bench_plugin")
            with open(self.rig.config_file, encoding="utf-8") as handle:
                self.rig.config = yaml.safe_load(handle)
            self.rig.setup_plugin_instances()
            self.rig.start_server()
            self.rig.global_data = {}
            self.rig.initialized = True
            for index, callback in enumerate(pre):
                self.rig.register_hook_callback(
                    event, "pre", callback, name=f"bench_pre_{index}"
                )
        except BaseException:
            self.close()
            raise
        self.event = event

    @staticmethod
    def _write_config(count: int, threaded: bool) -> str:
        config = {
            "threaded": threaded,
            "squash_exceptions": False,
            "plugins": {
                f"p{index}": {"plugin": "bench_plugin", "enabled": True}
                for index in range(count)
            },
        }
        handle, path = tempfile.mkstemp(prefix="bench-riggerlib-", suffix=".yaml")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            yaml.safe_dump(config, stream)
        return path

    def process_hook(self, **kwargs: Any) -> tuple[dict, dict]:
        return self.rig.process_hook(self.event, **kwargs)

    def close(self) -> None:
        self.rig._global_queue_shutdown = True
        self.rig._background_queue_shutdown = True
        for thread in self.threads:
            thread.join(THREAD_JOIN_SECONDS)
        try:
            os.unlink(self.rig.config_file)
        except OSError:
            pass


def _riggerlib_plugin(riggerlib: Any, event: str, hook_func: Callable[..., Any]) -> Any:
    """A riggerlib plugin class binding ``hook_func`` with its own signature."""

    class BenchPlugin(riggerlib.RiggerBasePlugin):
        def plugin_initialize(self) -> None:
            self.register_plugin_hook(event, hook_func)

    return BenchPlugin


def ray_unavailable() -> str | None:
    """Why Ray cannot be measured here, or ``None`` when it can."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray not installed (optional: pip install ray)"
    return None


def _ensure_ray() -> Any:
    global _ray_started
    import ray

    if not _ray_started:
        ray.init(
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        _ray_started = True
    return ray


def shutdown_ray() -> None:
    """Stop the local Ray instance if this run started one."""
    global _ray_started
    if _ray_started:
        import ray

        ray.shutdown()
        _ray_started = False


class RayActors:
    """N Ray actors, one per plugin; an event calls every actor's hook."""

    def __init__(
        self,
        count: int,
        hook_name: str,
        pre: Sequence[Callable[..., Any]] = (),
    ) -> None:
        ray = _ensure_ray()
        self.ray = ray
        actor_cls = ray.remote(num_cpus=0)(hooks.HookActor)
        self.actors = [actor_cls.remote() for _ in range(count)]
        ray.get([actor.ready.remote() for actor in self.actors], timeout=120)
        self.hook_name = hook_name
        self.names = parameter_names(hooks.HOOKS_BY_NAME[hook_name])
        self.pre = [(f, parameter_names(f)) for f in pre]
        self.global_data: dict[str, Any] = {}

    def process_hook(self, **kwargs: Any) -> tuple[dict, dict]:
        local = dict(kwargs)
        glob = self.global_data
        for func, names in self.pre:
            merge_updates([func(**select_args(names, local, glob))], local, glob)
        selected = select_args(self.names, local, glob)
        refs = [actor.call.remote(self.hook_name, selected) for actor in self.actors]
        merge_updates(self.ray.get(refs), local, glob)
        return local, glob

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
