"""Fault 10: fire_hook from eight threads at once.

Every event is processed exactly once, each thread's events in the order it
fired them, and the global namespace never shows a half-merged event: both
instances record the events in the same order, and the call counters match.
"""

from __future__ import annotations

import threading

import pytest

from .conftest import RecordingRigger
from .fault_plugins import Ticker

THREADS = 8
EVENTS_PER_THREAD = 40
TICKERS = ("a", "b")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
def test_events_fired_from_many_threads_are_each_processed_once_in_order(
    no_orphans, threaded
):
    rig = RecordingRigger(
        config={
            "threaded": threaded,
            "plugins": {ident: {"plugin": "ticker"} for ident in TICKERS},
        }
    )
    rig.register_plugin(Ticker, "ticker")
    mismatches: list[str] = []

    def check_local(thread, seq, echo_a, echo_b):
        # A post-callback sees this event's local namespace, and only it.
        if not (echo_a == echo_b == (thread, seq)):
            mismatches.append(f"event {(thread, seq)} saw {echo_a}, {echo_b}")

    rig.register_hook_callback("tick", "post", check_local, name="check")
    barrier = threading.Barrier(THREADS)
    problems: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            barrier.wait(timeout=60)
            for seq in range(EVENTS_PER_THREAD):
                result = rig.fire_hook("tick", grab_result=True, thread=thread, seq=seq)
                if result["echo_a"] != (thread, seq):
                    mismatches.append(f"result of {(thread, seq)}: {result['echo_a']}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            problems.append(exc)

    with rig:
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(150)
        assert not any(thread.is_alive() for thread in threads), "a thread hung"
        order = rig.global_data["order"]
        calls = rig.global_data["calls"]
        stats = rig.stats()

    assert problems == [] and mismatches == [] and rig.failures == []
    total = THREADS * EVENTS_PER_THREAD
    expected = {(t, s) for t in range(THREADS) for s in range(EVENTS_PER_THREAD)}
    for ident in TICKERS:
        assert len(order[ident]) == total
        assert set(order[ident]) == expected
        for thread in range(THREADS):
            mine = [seq for t, seq in order[ident] if t == thread]
            assert mine == list(range(EVENTS_PER_THREAD))
        assert calls[ident] == total
        assert stats[ident]["calls"] == total
    assert order["a"] == order["b"]
