"""Fault 5: nothing a plugin starts outlives the plugin's process.

The plugin starts a shell with a background job, a Python subprocess with a
grandchild, or a forked tree of 39 processes, records every pid in a file,
and then dies, hangs until its timeout, or returns and waits for shutdown.
"""

from __future__ import annotations

import pytest

from rigger_sandbox import HookTimeout, PluginCrashed

from .conftest import FAULTY, GONE_TIMEOUT_S, assert_all_gone, is_gone
from .containment import check_contained, fire
from .fault_plugins import read_pids

EXPECTED_PROCESSES = {"shell": 2, "subprocess": 2, "fork_tree": 39}
KINDS = pytest.mark.parametrize("kind", list(EXPECTED_PROCESSES))
# A timeout far above the time a crash takes to be noticed: a sandbox that
# misses the crash then fails with HookTimeout instead of hanging the test.
CRASH_GUARD_S = 20


def recorded(tmp_path, kind):
    pids = read_pids(tmp_path / "pids")
    assert len(pids) == EXPECTED_PROCESSES[kind], pids
    return pids


@pytest.mark.timeout(90)
@KINDS
def test_processes_a_crashing_plugin_started_are_ended_with_it(
    rig_factory, tmp_path, kind
):
    rig = rig_factory(squash_exceptions=True, faulty={"timeout": CRASH_GUARD_S})

    outcome = check_contained(
        rig,
        fault="spawn",
        arg={"out": str(tmp_path), "kind": kind, "then": "exit"},
        expected=PluginCrashed,
        squash=True,
        restarted=True,
    )

    assert outcome.error.exitcode == 9
    assert_all_gone(
        recorded(tmp_path, kind), f"{kind} of a crashed plugin", GONE_TIMEOUT_S
    )


@pytest.mark.timeout(120)
def test_fork_tree_of_a_crashing_plugin_is_ended_under_every_start_method(
    rig_factory, tmp_path, start_method
):
    rig = rig_factory(
        squash_exceptions=True,
        start_method=start_method,
        faulty={"timeout": CRASH_GUARD_S},
    )

    check_contained(
        rig,
        fault="spawn",
        arg={"out": str(tmp_path), "kind": "fork_tree", "then": "exit"},
        expected=PluginCrashed,
        squash=True,
        restarted=True,
    )

    assert_all_gone(recorded(tmp_path, "fork_tree"), "fork tree", GONE_TIMEOUT_S)


@pytest.mark.timeout(90)
@KINDS
def test_processes_a_hung_plugin_started_are_ended_at_its_timeout(
    rig_factory, tmp_path, kind
):
    rig = rig_factory(squash_exceptions=False, faulty={"timeout": 2})

    check_contained(
        rig,
        fault="spawn",
        arg={"out": str(tmp_path), "kind": kind, "then": "hang"},
        expected=HookTimeout,
        squash=False,
        restarted=True,
    )

    assert (tmp_path / "ready").exists(), "the plugin never finished spawning"
    assert_all_gone(
        recorded(tmp_path, kind), f"{kind} of a timed-out plugin", GONE_TIMEOUT_S
    )


@pytest.mark.timeout(90)
@KINDS
def test_processes_left_behind_by_a_finished_hook_end_at_shutdown(
    rig_factory, tmp_path, kind
):
    rig = rig_factory()
    arg = {"out": str(tmp_path), "kind": kind, "then": "return"}

    result = fire(rig, 1, fault="spawn", arg=arg)
    pids = recorded(tmp_path, kind)
    assert result[f"done_{FAULTY}"] == 1
    assert not any(is_gone(pid) for pid in pids), "the children should still run"
    rig.shutdown()

    assert_all_gone(pids, f"{kind} left by a hook, after shutdown", GONE_TIMEOUT_S)
