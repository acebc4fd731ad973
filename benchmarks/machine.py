"""What the numbers were measured on: CPU, memory, Python, start method."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import psutil


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's best guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(start_method: str) -> dict[str, Any]:
    """A flat description of the machine and interpreter for the report."""
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "start_method": start_method,
    }


def describe(info: dict[str, Any]) -> str:
    """One paragraph for the top of the printed report."""
    load = ", ".join(f"{v:.2f}" for v in info["load_average"])
    return (
        f"machine: {info['cpu_count']} CPUs ({info['usable_cpus']} usable), "
        f"{info['cpu_model']}, {info['memory_gib']} GiB, load {load}\n"
        f"python: {info['implementation']} {info['python']} on {info['platform']}\n"
        f"start method: {info['start_method']}"
    )
