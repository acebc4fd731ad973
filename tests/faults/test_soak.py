"""Soak: 100,000 events through four plugins, one of which crashes every 1,000th call.

Run it on its own: ``pytest -m soak -s tests/faults/test_soak.py``. The event
count can be lowered for a smoke run with ``RIGGER_SOAK_EVENTS=2000``. It
prints events per second, open descriptors and resident memory before and
after, for the README.

Asserted: every event's good updates arrived (each good instance's local
update for that very event, the crashing one's on every call but its crash
calls), exactly one crash per 1,000 events, the parent's descriptors back to
their level after warm-up, its resident memory grown by less than
RSS_GROWTH_LIMIT_MB, and no zombie children at any checkpoint.
"""

from __future__ import annotations

import os
import time

import psutil
import pytest

from rigger_sandbox import PluginCrashed

from .conftest import RecordingRigger
from .fault_plugins import Soaker

EVENTS = int(os.environ.get("RIGGER_SOAK_EVENTS", "100000"))
CRASH_EVERY = 1000
# Crash in the middle of each thousand, so the last crash is followed by
# events that restart the plugin before the final checks.
CRASH_AT = 500
WARMUP = min(1000, EVENTS // 10)
CHECK_EVERY = 1000
GOOD = ("steady1", "steady2", "steady3")
CRASHY = "crashy"

RSS_GROWTH_LIMIT_MB = 20.0
FD_GROWTH_LIMIT = 0


def zombie_children() -> list[int]:
    zombies = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                zombies.append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return zombies


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_many_events_with_a_crashing_plugin_keep_every_good_update(no_orphans):
    me = psutil.Process()
    plugins = {ident: {"plugin": "soaker"} for ident in GOOD[:2]}
    plugins[CRASHY] = {
        "plugin": "soaker",
        "crash_every": CRASH_EVERY,
        "crash_at": CRASH_AT,
        "max_restarts": EVENTS,
    }
    plugins[GOOD[2]] = {"plugin": "soaker"}
    rig = RecordingRigger(config={"squash_exceptions": True, "plugins": plugins})
    rig.register_plugin(Soaker, "soaker")

    missing: list[tuple[int, str]] = []
    crashes_seen: list[int] = []
    max_zombies = 0
    with rig:
        fds_start, rss_start = me.num_fds(), me.memory_info().rss
        started = time.perf_counter()
        for seq in range(EVENTS):
            if seq == WARMUP:
                fds_warm, rss_warm = me.num_fds(), me.memory_info().rss
            failures_before = len(rig.failures)
            result = rig.fire_hook("soak", grab_result=True, seq=seq)
            for ident in GOOD:
                if result.get(ident) != seq:
                    missing.append((seq, ident))
            if len(rig.failures) != failures_before:
                crashes_seen.append(seq)
            elif result.get(CRASHY) != seq:
                missing.append((seq, CRASHY))
            if seq % CHECK_EVERY == CHECK_EVERY - 1:
                max_zombies = max(max_zombies, len(zombie_children()))
        elapsed = time.perf_counter() - started
        fds_end, rss_end = me.num_fds(), me.memory_info().rss
        zombies_end = zombie_children()
        stats = rig.stats()
        final_global = dict(rig.global_data)

    mb = 1024 * 1024
    print(
        f"\nsoak: {EVENTS} events x 4 plugins in {elapsed:.1f} s = "
        f"{EVENTS / elapsed:.0f} events/s; crashes {len(crashes_seen)}\n"
        f"soak: parent fds start {fds_start}, after warm-up {fds_warm}, "
        f"end {fds_end}\n"
        f"soak: parent RSS start {rss_start / mb:.1f} MB, after warm-up "
        f"{rss_warm / mb:.1f} MB, end {rss_end / mb:.1f} MB\n"
        f"soak: crashy p50 {stats[CRASHY]['p50_ms']:.3f} ms, "
        f"p99 {stats[CRASHY]['p99_ms']:.3f} ms, restarts {stats[CRASHY]['restarts']}"
    )

    expected_crashes = [s for s in range(EVENTS) if s % CRASH_EVERY == CRASH_AT]
    assert missing == [], f"{len(missing)} good updates missing, first {missing[:5]}"
    assert crashes_seen == expected_crashes
    assert all(isinstance(e, PluginCrashed) and e.exitcode == 13 for e in rig.failures)
    assert stats[CRASHY]["failures"]["crash"] == len(expected_crashes)
    assert stats[CRASHY]["restarts"] == len(expected_crashes)
    for ident in GOOD:
        assert stats[ident]["calls"] == EVENTS
        assert sum(stats[ident]["failures"].values()) == 0
        assert final_global[f"last_{ident}"] == EVENTS - 1
    assert fds_end - fds_warm <= FD_GROWTH_LIMIT
    assert (rss_end - rss_warm) / mb < RSS_GROWTH_LIMIT_MB
    assert max_zombies <= 1 and zombies_end == []
