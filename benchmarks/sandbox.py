"""The contender under test: a rigger_sandbox Rigger with containment on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rigger_sandbox import Rigger

from .hooks import SANDBOX_PLUGINS

# Containment stays on while measuring: every hook runs under a timeout and
# every plugin process under memory and open-file limits, with replies decoded
# by the untrusted (allow-list) decoder.
CONTAINMENT: dict[str, Any] = {
    "timeout": 30.0,
    "memory_limit_mb": 1024,
    "max_open_files": 256,
    "trusted": False,
}


def sandbox_config(
    plugins: Sequence[str], threaded: bool, start_method: str
) -> dict[str, Any]:
    """A configuration with one instance per entry of ``plugins`` (plugin names)."""
    return {
        **CONTAINMENT,
        "threaded": threaded,
        "start_method": start_method,
        "plugins": {
            f"p{index}": {"plugin": name} for index, name in enumerate(plugins)
        },
    }


def build_rigger(
    plugins: Sequence[str],
    threaded: bool,
    start_method: str,
    event: str,
    pre: Sequence[Callable[..., Any]] = (),
) -> Rigger:
    """A configured, registered but not yet started Rigger."""
    rig = Rigger(config=sandbox_config(plugins, threaded, start_method))
    for name, cls in SANDBOX_PLUGINS.items():
        rig.register_plugin(cls, name)
    for index, callback in enumerate(pre):
        rig.register_hook_callback(event, "pre", callback, name=f"bench_pre_{index}")
    return rig


class Sandbox:
    """A started Rigger whose ``process_hook`` fires one fixed event."""

    def __init__(
        self,
        plugins: Sequence[str],
        threaded: bool,
        start_method: str,
        event: str,
        pre: Sequence[Callable[..., Any]] = (),
    ) -> None:
        self.event = event
        self.rig = build_rigger(plugins, threaded, start_method, event, pre)
        self.rig.start()

    def process_hook(self, **kwargs: Any) -> tuple[dict, dict]:
        return self.rig.process_hook(self.event, **kwargs)

    def close(self) -> None:
        self.rig.shutdown()
