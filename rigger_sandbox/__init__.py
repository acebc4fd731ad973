"""rigger_sandbox: Rigger-style event hooks, each plugin instance in its own process."""

from .errors import (
    ArgumentError,
    ConfigError,
    HookError,
    HookTimeout,
    NestedEventError,
    PluginCrashed,
    ProtocolError,
    ResourceLimitExceeded,
    RiggerError,
    RiggerStateError,
    UnsafeValueError,
)
from .namespaces import recursive_update
from .plugin import RiggerBasePlugin
from .rigger import Rigger

__all__ = [
    "ArgumentError",
    "ConfigError",
    "HookError",
    "HookTimeout",
    "NestedEventError",
    "PluginCrashed",
    "ProtocolError",
    "ResourceLimitExceeded",
    "Rigger",
    "RiggerBasePlugin",
    "RiggerError",
    "RiggerStateError",
    "UnsafeValueError",
    "recursive_update",
]

__version__ = "0.1.0"
