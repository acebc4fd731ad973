"""The hook functions every contender runs, and the plugin classes around them.

The hooks are plain module-level functions so that each contender (plugin
process, pipe echo, in-process call, process pool, riggerlib, Ray) runs the
very same code; the plugin classes only bind them to events.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from rigger_sandbox import RiggerBasePlugin

SMALL_EVENT = "bench_event"
BLOB_EVENT = "blob_event"
CPU_EVENT = "cpu_event"
SMALL_ITEM = "ping"

Updates = tuple[dict[str, Any] | None, dict[str, Any] | None]


def pre_count(item: str) -> Updates:
    """The parent-side pre-callback: derive ``count`` from ``item``."""
    return {"count": len(item)}, None


def small_hook(item: str, count: int) -> Updates:
    """The small hook: one small local update."""
    return {"seen": count + 1, "last": item}, None


def expected_small_local(item: str = SMALL_ITEM) -> dict[str, Any]:
    """The local namespace a correct engine returns for one small event."""
    return {"item": item, "count": len(item), "seen": len(item) + 1, "last": item}


def item_only_hook(item: str) -> Updates:
    """A hook that declares only ``item`` (it must not receive a blob)."""
    return {"last": item}, None


def blob_hook(blob: bytes) -> Updates:
    """Receives the big argument and answers with its length only."""
    return {"blob_len": len(blob)}, None


def burn_cpu(seconds: float) -> float:
    """Spend ``seconds`` of this process's CPU time; return the CPU time used."""
    start = time.process_time()
    deadline = start + seconds
    total = 0
    while time.process_time() < deadline:
        for value in range(2000):
            total += value * value
    return time.process_time() - start


def cpu_hook(cpu_seconds: float) -> Updates:
    """A CPU-bound hook; it reports its pid so the runner sees two processes."""
    used = burn_cpu(cpu_seconds)
    return None, {f"cpu_{os.getpid()}": used}


class SmallPlugin(RiggerBasePlugin):
    """Binds :func:`small_hook` to the small event."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook(SMALL_EVENT, self.on_small)

    def on_small(self, item: str, count: int) -> Updates:
        return small_hook(item, count)


class ItemOnlyPlugin(RiggerBasePlugin):
    """Binds :func:`item_only_hook`: its hook never declares the blob."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook(SMALL_EVENT, self.on_small)

    def on_small(self, item: str) -> Updates:
        return item_only_hook(item)


class BlobPlugin(RiggerBasePlugin):
    """Binds :func:`blob_hook` to the blob event."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook(BLOB_EVENT, self.on_blob)

    def on_blob(self, blob: bytes) -> Updates:
        return blob_hook(blob)


class CpuPlugin(RiggerBasePlugin):
    """Binds :func:`cpu_hook` to the CPU event."""

    def plugin_initialize(self) -> None:
        self.register_plugin_hook(CPU_EVENT, self.on_cpu)

    def on_cpu(self, cpu_seconds: float) -> Updates:
        return cpu_hook(cpu_seconds)


SANDBOX_PLUGINS: dict[str, type[RiggerBasePlugin]] = {
    "bench_small": SmallPlugin,
    "bench_item_only": ItemOnlyPlugin,
    "bench_blob": BlobPlugin,
    "bench_cpu": CpuPlugin,
}


HOOKS_BY_NAME: dict[str, Callable[..., Updates]] = {
    "small_hook": small_hook,
    "item_only_hook": item_only_hook,
    "blob_hook": blob_hook,
    "cpu_hook": cpu_hook,
}


def call_by_name(hook_name: str, kwargs: dict[str, Any]) -> Updates:
    """Run one of the hooks above by name (the process pool and Ray target)."""
    return HOOKS_BY_NAME[hook_name](**kwargs)


class HookActor:
    """Ray actor body: one actor stands for one plugin instance."""

    def call(self, hook_name: str, kwargs: dict[str, Any]) -> Updates:
        return call_by_name(hook_name, kwargs)

    def ready(self) -> int:
        return os.getpid()
