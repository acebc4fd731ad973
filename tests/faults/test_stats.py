"""rig.stats(): state, pid, calls, failures by kind, restarts, hook-time percentiles."""

from __future__ import annotations

import pytest

from .conftest import FAULTY, GOOD
from .containment import FAILURE_KINDS, fire

KEYS = {"state", "pid", "calls", "failures", "restarts", "p50_ms", "p99_ms", "max_ms"}


@pytest.mark.timeout(60)
def test_stats_list_every_enabled_instance_in_configuration_order(rig_factory):
    rig = rig_factory(
        plugins={
            "off": {"plugin": "recorder", "enabled": False},
            "last": {"plugin": "recorder"},
        }
    )

    stats = rig.stats()

    assert list(stats) == ["before", FAULTY, "after", "last"]
    for ident, entry in stats.items():
        assert set(entry) == KEYS
        assert entry["state"] == "running"
        assert entry["pid"] == rig.plugin_pids()[ident]
        assert entry["calls"] == 0 and entry["restarts"] == 0
        assert entry["failures"] == dict.fromkeys(FAILURE_KINDS, 0)
        assert entry["p50_ms"] is None and entry["max_ms"] is None


@pytest.mark.timeout(60)
def test_stats_count_calls_and_order_the_percentiles(rig_factory):
    rig = rig_factory()

    for seq in range(25):
        fire(rig, seq)

    for ident in (*GOOD, FAULTY):
        entry = rig.stats()[ident]
        assert entry["calls"] == 25
        assert 0 < entry["p50_ms"] <= entry["p99_ms"] <= entry["max_ms"]


@pytest.mark.timeout(90)
def test_stats_count_each_failure_under_its_kind(rig_factory, tmp_path):
    rig = rig_factory(squash_exceptions=True, faulty={"timeout": 2})
    faults = [
        ("raise_exception", "x", "exception"),
        ("os_exit", 3, "crash"),
        ("hang", str(tmp_path / "hang"), "timeout"),
        ("garbage_on_pipes", None, "protocol"),
    ]

    for seq, (fault, arg, _) in enumerate(faults):
        fire(rig, seq, fault=fault, arg=arg)
    fire(rig, 99)

    entry = rig.stats()[FAULTY]
    assert [e.kind for e in rig.failures] == [kind for *_, kind in faults]
    assert entry["failures"] == {
        **dict.fromkeys(FAILURE_KINDS, 0),
        "exception": 1,
        "crash": 1,
        "timeout": 1,
        "protocol": 1,
    }
    assert entry["restarts"] == 3
    assert entry["state"] == "running"
    assert entry["calls"] == len(faults) + 1


@pytest.mark.timeout(60)
def test_stats_show_restarting_until_the_next_hook_and_stopped_after_shutdown(
    rig_factory,
):
    rig = rig_factory(squash_exceptions=True)

    fire(rig, 1, fault="os_exit", arg=3)
    assert rig.stats()[FAULTY]["state"] in ("restarting", "running")
    fire(rig, 2)
    assert rig.stats()[FAULTY]["state"] == "running"
    rig.shutdown()

    for entry in rig.stats().values():
        assert entry["state"] == "stopped" and entry["pid"] is None
