"""Restart policy: max_restarts within restart_window_s, then disabled for the run."""

from __future__ import annotations

import logging
import time

import pytest

from rigger_sandbox import PluginCrashed

from .conftest import FAULTY, GOOD, assert_all_gone
from .containment import fire


def crash(rig, seq):
    rig.fire_hook("work", seq=seq, fault="os_exit", arg=5)


def disable_lines(logs):
    return [
        r
        for r in logs.records
        if r.levelno >= logging.WARNING
        and FAULTY in r.getMessage()
        and "disabled" in r.getMessage()
    ]


@pytest.mark.timeout(90)
def test_plugin_crashing_past_max_restarts_is_disabled_and_its_hooks_skipped(
    rig_factory, sandbox_logs
):
    rig = rig_factory(
        squash_exceptions=True, faulty={"max_restarts": 2, "restart_window_s": 3600}
    )
    pids = []

    for seq in (10, 20, 30):
        assert fire(rig, seq)["done_faulty"] == seq  # restarts it after a crash
        pids.append(rig.plugin_pids()[FAULTY])
        crash(rig, seq + 1)

    assert [type(e) for e in rig.failures] == [PluginCrashed] * 3
    stats = rig.stats()[FAULTY]
    assert stats["state"] == "disabled"
    assert stats["pid"] is None and rig.plugin_pids()[FAULTY] is None
    assert stats["restarts"] == 2
    assert stats["failures"]["crash"] == 3
    assert len(disable_lines(sandbox_logs)) == 1
    assert len(set(pids)) == 3
    assert_all_gone(pids, "processes of the crashed plugin", 5.0)

    # Its hooks are skipped without error; the others carry on.
    calls_before = stats["calls"]
    result = fire(rig, 4)
    fire(rig, 5, fault="os_exit", arg=5)
    assert result["done_before"] == 4 and result["done_after"] == 4
    assert "done_faulty" not in result
    assert len(rig.failures) == 3
    assert rig.stats()[FAULTY]["calls"] == calls_before
    assert rig.stats()[FAULTY]["state"] == "disabled"
    assert len(disable_lines(sandbox_logs)) == 1
    for ident in GOOD:
        assert rig.stats()[ident]["state"] == "running"


@pytest.mark.timeout(60)
def test_max_restarts_zero_disables_at_the_first_crash(rig_factory):
    rig = rig_factory(squash_exceptions=True, faulty={"max_restarts": 0})

    crash(rig, 1)
    result = fire(rig, 2)

    assert rig.stats()[FAULTY]["state"] == "disabled"
    assert rig.stats()[FAULTY]["restarts"] == 0
    assert "done_faulty" not in result and result["done_after"] == 2


@pytest.mark.timeout(60)
def test_top_level_max_restarts_applies_to_every_instance(rig_factory):
    rig = rig_factory(squash_exceptions=True, max_restarts=1)

    crash(rig, 1)
    assert fire(rig, 2)["done_faulty"] == 2
    crash(rig, 3)

    assert rig.stats()[FAULTY]["state"] == "disabled"
    assert rig.stats()[FAULTY]["restarts"] == 1


@pytest.mark.timeout(60)
def test_crashes_older_than_restart_window_s_do_not_count(rig_factory):
    window = 1.0
    rig = rig_factory(
        squash_exceptions=True, faulty={"max_restarts": 1, "restart_window_s": window}
    )

    crash(rig, 1)
    first_crash = time.monotonic()
    assert fire(rig, 2)["done_faulty"] == 2
    # The behaviour under test is the clock: let the window pass.
    while time.monotonic() < first_crash + 2 * window:
        time.sleep(0.05)
    crash(rig, 3)
    result = fire(rig, 4)

    assert rig.stats()[FAULTY]["state"] == "running"
    assert rig.stats()[FAULTY]["restarts"] == 2
    assert result["done_faulty"] == 4


@pytest.mark.timeout(60)
def test_restarted_plugin_is_initialized_and_configured_again(rig_factory):
    rig = rig_factory(squash_exceptions=True, start=False)
    rig.configure_plugin(FAULTY, token="secret-7")
    rig.start()
    first = fire_token(rig)

    crash(rig, 1)
    second = fire_token(rig)

    assert first["token"] == second["token"] == "secret-7"
    assert first["token_pid"] != second["token_pid"]
    assert second["token_pid"] == rig.plugin_pids()[FAULTY]


def fire_token(rig):
    result = rig.fire_hook("token", grab_result=True)
    assert isinstance(result, dict)
    return result
