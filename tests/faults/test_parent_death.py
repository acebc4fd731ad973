"""Fault 9: when the parent dies, even by SIGKILL, every plugin process ends.

A script in a subprocess plays the parent: it starts a Rigger, reports the
plugin pids and blocks in a hook that has started a subprocess of its own.
The test SIGKILLs it and polls, with a bound, for all of them to be gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import assert_all_gone, wait_until
from .fault_plugins import read_pids

SCRIPT = Path(__file__).with_name("parent_script.py")
# The issue asks for "a second or two"; the poll allows for a loaded machine.
GONE_AFTER_PARENT_DEATH_S = 5.0
STARTUP_TIMEOUT_S = 60.0


def run_and_kill_parent(out: Path, start_method: str) -> tuple[list[int], list[int]]:
    """Start the parent script, wait until its hook blocks, SIGKILL it."""
    parent = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), start_method],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: (out / "ready").exists() or parent.poll() is not None,
            STARTUP_TIMEOUT_S,
            "the parent script reached the blocking hook",
        )
        assert parent.poll() is None, f"parent exited early: {parent.returncode}"
        plugins = list(json.loads((out / "pids.json").read_text()).values())
        spawned = read_pids(out / "pids")
        parent.send_signal(signal.SIGKILL)
        assert parent.wait(10) == -signal.SIGKILL
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    return plugins, spawned


@pytest.mark.timeout(120)
def test_plugin_processes_end_when_the_parent_is_sigkilled(tmp_path, start_method):
    plugins, _ = run_and_kill_parent(tmp_path, start_method)

    assert len(plugins) == 2 and all(isinstance(pid, int) for pid in plugins)
    assert os.getpid() not in plugins
    assert_all_gone(
        plugins, "plugin processes after parent SIGKILL", GONE_AFTER_PARENT_DEATH_S
    )


@pytest.mark.timeout(120)
def test_processes_a_plugin_started_end_when_the_parent_is_sigkilled(tmp_path):
    _, spawned = run_and_kill_parent(tmp_path, "forkserver")

    assert len(spawned) == 2
    assert_all_gone(
        spawned,
        "a plugin's subprocess tree after parent SIGKILL",
        GONE_AFTER_PARENT_DEATH_S,
    )
