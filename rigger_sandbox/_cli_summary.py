"""The command line's summary: the statistics table and the global namespace."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

FAILURE_KINDS = ("exception", "crash", "timeout", "limit", "protocol")
VALUE_WIDTH = 200


def select_keys(namespace: Mapping[str, Any], keys: Sequence[str] | None) -> dict:
    """The global namespace, or only ``keys`` of it."""
    if keys is None:
        return dict(namespace)
    return {key: namespace[key] for key in keys if key in namespace}


def format_stats(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """A plain-text table of ``Rigger.stats()``, one row per instance."""
    header = [
        "instance",
        "state",
        "pid",
        "calls",
        "failures",
        "restarts",
        "p50 ms",
        "p99 ms",
        "max ms",
    ]
    rows = [header]
    for ident, entry in stats.items():
        rows.append(
            [
                ident,
                str(entry["state"]),
                "-" if entry["pid"] is None else str(entry["pid"]),
                str(entry["calls"]),
                format_failures(entry["failures"]),
                str(entry["restarts"]),
                format_ms(entry["p50_ms"]),
                format_ms(entry["p99_ms"]),
                format_ms(entry["max_ms"]),
            ]
        )
    if len(rows) == 1:
        return "No enabled plugin instances."
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    left = {0, 1, 4}
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if col in left else cell.rjust(width)
            for col, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_failures(failures: Mapping[str, int]) -> str:
    """``crash=2 exception=1``, or ``0`` when there were none."""
    order = [kind for kind in FAILURE_KINDS if kind in failures]
    order += sorted(kind for kind in failures if kind not in FAILURE_KINDS)
    parts = [f"{kind}={failures[kind]}" for kind in order if failures[kind]]
    return " ".join(parts) or "0"


def format_ms(value: float | None) -> str:
    """Milliseconds with two decimals, ``-`` for no value."""
    return "-" if value is None else f"{value:.2f}"


def format_namespace(namespace: Mapping[str, Any]) -> str:
    """The global namespace, one ``key: value`` line each, long values cut."""
    if not namespace:
        return "Global namespace: empty"
    lines = ["Global namespace:"]
    for key, value in namespace.items():
        text = json.dumps(json_safe(value), ensure_ascii=False)
        if len(text) > VALUE_WIDTH:
            text = text[: VALUE_WIDTH - 3] + "..."
        lines.append(f"  {key}: {text}")
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """``value`` with what JSON cannot hold turned into strings (repr)."""
    if isinstance(value, Mapping):
        return {
            key if isinstance(key, str) else repr(key): json_safe(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
