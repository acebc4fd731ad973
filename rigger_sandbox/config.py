"""Configuration: YAML or a mapping read into typed, validated settings."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import ConfigError

START_METHODS = ("fork", "forkserver", "spawn")

# Keys an instance may override; their defaults come from the top level.
_INHERITED: dict[str, Any] = {
    "timeout": None,
    "memory_limit_mb": None,
    "cpu_limit_s": None,
    "max_open_files": None,
    "max_restarts": 5,
    "restart_window_s": 60.0,
    "trusted": False,
    "cwd": None,
    "env": "inherit",
}

_TOP_LEVEL: dict[str, Any] = {
    "squash_exceptions": False,
    "threaded": False,
    "start_method": "forkserver",
    "max_message_mb": 64,
    "max_nested_depth": 32,
    "max_nested_events": 1000,
    "startup_timeout_s": 60.0,
    "plugins": {},
    **_INHERITED,
}


@dataclass(frozen=True)
class PluginRef:
    """Where an instance's plugin class comes from.

    ``kind`` is "registered" (``name`` is a register_plugin name), "module"
    (``name`` is an import path) or "file" (``name`` is an absolute path); for
    the last two ``attr`` is the class's qualified name.
    """

    kind: str
    name: str
    attr: str = ""


@dataclass(frozen=True)
class InstanceSettings:
    """The settings of one plugin instance (one plugin process)."""

    ident: str
    plugin: PluginRef
    data: dict
    enabled: bool = True
    background: bool = False
    timeout: float | None = None
    memory_limit_mb: float | None = None
    cpu_limit_s: float | None = None
    max_open_files: int | None = None
    max_restarts: int = 5
    restart_window_s: float = 60.0
    trusted: bool = False
    cwd: str | None = None
    env: str | dict = "inherit"


@dataclass(frozen=True)
class Settings:
    """The whole configuration, validated."""

    source: str | None
    raw: dict
    squash_exceptions: bool = False
    threaded: bool = False
    start_method: str = "forkserver"
    max_message_mb: float = 64
    max_nested_depth: int = 32
    max_nested_events: int = 1000
    startup_timeout_s: float = 60.0
    instances: tuple[InstanceSettings, ...] = field(default_factory=tuple)


def read_config(
    config_file: str | os.PathLike | None, config: Mapping | None
) -> tuple[dict, str | None]:
    """Return the raw configuration mapping and the name of its source."""
    if config_file is not None and config is not None:
        raise ConfigError("give either a configuration file or a mapping, not both")
    if config is not None:
        if not isinstance(config, Mapping):
            raise ConfigError(
                f"the configuration must be a mapping, got {type(config).__name__}"
            )
        return dict(config), None
    if config_file is None:
        return {}, None
    source = os.fspath(config_file)
    try:
        with open(source, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the file: {exc.strerror}", source=source
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source=source) from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"the document must be a mapping of keys, got {type(data).__name__}",
            source=source,
        )
    return dict(data), source


def build_settings(
    raw: dict, source: str | None, registered: Mapping[str, object]
) -> Settings:
    """Validate ``raw`` and resolve every instance's plugin reference."""
    unknown = sorted(str(key) for key in raw if key not in _TOP_LEVEL)
    if unknown:
        raise ConfigError(
            f"unknown top-level key(s) {unknown}; expected some of "
            f"{sorted(_TOP_LEVEL)}",
            source=source,
            key=unknown[0],
        )
    check = _Checker(source)
    top = {key: raw.get(key, default) for key, default in _TOP_LEVEL.items()}
    for key in _TOP_LEVEL:
        if key != "plugins":
            check.value(key, top[key])
    if top["start_method"] not in START_METHODS:
        raise ConfigError(
            f"expected one of {list(START_METHODS)}, got {top['start_method']!r}",
            source=source,
            key="start_method",
        )

    plugins = top["plugins"]
    if plugins is None:
        plugins = {}
    if not isinstance(plugins, Mapping):
        raise ConfigError(
            f"expected a mapping of instance names to settings, got "
            f"{type(plugins).__name__}",
            source=source,
            key="plugins",
        )
    base_dir = os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
    instances = []
    for ident, entry in plugins.items():
        instances.append(_instance(check, ident, entry, top, registered, base_dir))
    return Settings(
        source=source,
        raw=raw,
        squash_exceptions=top["squash_exceptions"],
        threaded=top["threaded"],
        start_method=top["start_method"],
        max_message_mb=top["max_message_mb"],
        max_nested_depth=top["max_nested_depth"],
        max_nested_events=top["max_nested_events"],
        startup_timeout_s=top["startup_timeout_s"],
        instances=tuple(instances),
    )


def _instance(
    check: _Checker,
    ident: object,
    entry: object,
    top: dict,
    registered: Mapping[str, object],
    base_dir: str,
) -> InstanceSettings:
    key = f"plugins.{ident}"
    if not isinstance(ident, str) or not ident:
        raise ConfigError(
            "instance names must be non-empty strings", source=check.source, key=key
        )
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"expected a mapping with at least 'plugin', got {type(entry).__name__}",
            source=check.source,
            key=key,
        )
    entry = dict(entry)
    values = {name: entry.get(name, top[name]) for name in _INHERITED}
    for name, value in values.items():
        check.value(f"{key}.{name}", value)
    enabled = entry.get("enabled", True)
    background = entry.get("background", False)
    check.value(f"{key}.enabled", enabled, bool)
    check.value(f"{key}.background", background, bool)
    if "plugin" not in entry:
        raise ConfigError(
            "missing 'plugin': a registered plugin name, "
            "'package.module:Class' or 'path/file.py:Class'",
            source=check.source,
            key=f"{key}.plugin",
        )
    ref = (
        resolve_plugin(
            entry["plugin"], registered, base_dir, check.source, f"{key}.plugin"
        )
        if enabled
        else None
    )
    return InstanceSettings(
        ident=ident,
        plugin=ref or PluginRef("registered", str(entry["plugin"])),
        data=entry,
        enabled=enabled,
        background=background,
        **values,
    )


def resolve_plugin(
    value: object,
    registered: Mapping[str, object],
    base_dir: str,
    source: str | None,
    key: str,
) -> PluginRef:
    """Turn an instance's ``plugin`` value into a PluginRef, or raise ConfigError."""
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"expected a plugin name string, got {value!r}", source=source, key=key
        )
    if value in registered:
        return PluginRef("registered", value)
    if ":" not in value:
        raise ConfigError(
            f"plugin {value!r} is not registered (registered: "
            f"{sorted(registered) or 'none'}) and is not 'module:Class' or "
            "'path/file.py:Class'",
            source=source,
            key=key,
        )
    target, _, attr = value.rpartition(":")
    if not attr.replace(".", "_").isidentifier():
        raise ConfigError(
            f"{attr!r} after ':' is not a class name", source=source, key=key
        )
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = target if os.path.isabs(target) else os.path.join(base_dir, target)
        if not os.path.isfile(path):
            raise ConfigError(
                f"plugin file {path!r} does not exist", source=source, key=key
            )
        return PluginRef("file", os.path.abspath(path), attr)
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"module {target!r} cannot be imported: {exc}", source=source, key=key
        ) from exc
    if found is None:
        raise ConfigError(
            f"plugin {value!r}: module {target!r} is not importable and "
            f"{value!r} is not a registered plugin name",
            source=source,
            key=key,
        )
    return PluginRef("module", target, attr)


class _Checker:
    """Type checks for configuration values, with messages naming the key."""

    _TYPES: dict[str, tuple[type, ...]] = {
        "squash_exceptions": (bool,),
        "threaded": (bool,),
        "start_method": (str,),
        "max_message_mb": (int, float),
        "max_nested_depth": (int,),
        "max_nested_events": (int,),
        "startup_timeout_s": (int, float),
        "timeout": (int, float, type(None)),
        "memory_limit_mb": (int, float, type(None)),
        "cpu_limit_s": (int, float, type(None)),
        "max_open_files": (int, type(None)),
        "max_restarts": (int,),
        "restart_window_s": (int, float),
        "trusted": (bool,),
        "cwd": (str, type(None)),
        "env": (str, Mapping),
    }

    def __init__(self, source: str | None) -> None:
        self.source = source

    def value(self, key: str, value: object, *types: type) -> None:
        short = key.rsplit(".", 1)[-1]
        expected = types or self._TYPES[short]
        ok = isinstance(value, expected) and not (
            isinstance(value, bool) and bool not in expected
        )
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = value > 0 or (short == "max_restarts" and value == 0)
        if ok and short == "env" and isinstance(value, str):
            ok = value == "inherit"
        if ok and short == "env" and isinstance(value, Mapping):
            ok = all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            )
        if not ok:
            raise ConfigError(
                f"expected {_expected(short, expected)}, got {value!r}",
                source=self.source,
                key=key,
            )


def _expected(short: str, types: tuple[type, ...]) -> str:
    if short == "env":
        return "'inherit' or a mapping of strings to strings"
    names = [t.__name__ for t in types if t is not type(None)]
    text = " or ".join(
        "number" if n in ("int", "float") else n for n in dict.fromkeys(names)
    )
    text = text.replace("number or number", "number")
    if any(t in types for t in (int, float)) and short != "start_method":
        text = "a positive " + text
    if type(None) in types:
        text += " or null"
    return text
