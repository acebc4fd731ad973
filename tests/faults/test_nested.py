"""Fault 8: nested events fired in a loop, recursively or in fan-out are bounded."""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError, NestedEventError

from .conftest import FAULTY, GOOD
from .containment import check_contained, fire

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])


@pytest.mark.timeout(60)
@SQUASH
def test_hook_firing_nested_events_in_a_loop_is_stopped_at_max_nested_events(
    rig_factory, squash
):
    rig = rig_factory(squash_exceptions=squash, max_nested_events=20)

    outcome = check_contained(
        rig,
        fault="nested_loop",
        arg=100_000,
        expected=HookError,
        squash=squash,
        restarted=False,
    )

    assert "max_nested_events" in str(outcome.error)
    # The failed hook's nested events went with the rest of its updates.
    assert "pings" not in rig.global_data


def fire_expecting_nested_error(rig, squash, **kwargs):
    if squash:
        fire(rig, 0, **kwargs)
        assert len(rig.failures) == 1, rig.failures
        error = rig.failures[0]
    else:
        with pytest.raises(NestedEventError) as caught:
            fire(rig, 0, **kwargs)
        error = caught.value
    assert isinstance(error, NestedEventError)
    return error


@pytest.mark.timeout(60)
@SQUASH
def test_recursive_nested_events_stop_at_max_nested_depth(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash, max_nested_depth=5)

    error = fire_expecting_nested_error(rig, squash, fault="nested_recurse", arg=0)

    assert "max_nested_depth" in str(error)
    # The top-level event and five nested levels ran, in order, and no more.
    assert rig.global_data["seen"][FAULTY] == [0, 1, 2, 3, 4, 5]
    for ident in GOOD:
        assert rig.global_data["seen"][ident] == [0, 1, 2, 3, 4, 5]
    after = fire(rig, 99)
    assert after[f"done_{FAULTY}"] == 99


@pytest.mark.timeout(60)
@SQUASH
def test_exponential_fan_out_of_nested_events_stops_at_max_nested_events(
    rig_factory, squash
):
    rig = rig_factory(squash_exceptions=squash, max_nested_events=20)

    error = fire_expecting_nested_error(rig, squash, fault="nested_fanout", arg=0)

    assert "max_nested_events" in str(error)
    ran = len(rig.global_data["seen"][FAULTY])
    # Each hook queues 3: unbounded, depth 32 would mean 3**32 events.
    assert 1 + 20 // 3 <= ran <= 1 + 20, ran
    after = fire(rig, 99)
    assert after[f"done_{FAULTY}"] == 99


@pytest.mark.timeout(60)
def test_nested_events_under_max_nested_events_all_run(rig_factory):
    rig = rig_factory(squash_exceptions=False, max_nested_events=20)

    fire(rig, 1, fault="nested_loop", arg=15)

    for ident in GOOD:
        assert rig.global_data["pings"][ident] == list(range(15))
