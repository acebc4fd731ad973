"""Fault 4: memory, CPU time and open files past their limits stop the plugin."""

from __future__ import annotations

import pytest

from rigger_sandbox import ResourceLimitExceeded

from .containment import check_contained

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])

# The hog allocates up to this much, well past every limit below and well
# below the machine's memory, so a sandbox that fails to stop it fails the
# test without hurting the machine.
HOG_MB = 1536


def check_limit(outcome, limit):
    error = outcome.error
    assert error.kind == "limit"
    assert error.limit == limit
    assert limit in str(error)


@pytest.mark.timeout(90)
@SQUASH
def test_instance_memory_limit_stops_a_hook_that_allocates_past_it(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash, faulty={"memory_limit_mb": 300})

    outcome = check_contained(
        rig,
        fault="allocate",
        arg=HOG_MB,
        expected=ResourceLimitExceeded,
        squash=squash,
        restarted=None,
    )

    check_limit(outcome, "memory_limit_mb")


@pytest.mark.timeout(90)
def test_top_level_memory_limit_applies_to_every_instance(rig_factory):
    rig = rig_factory(squash_exceptions=True, memory_limit_mb=300)

    outcome = check_contained(
        rig,
        fault="allocate",
        arg=HOG_MB,
        expected=ResourceLimitExceeded,
        squash=True,
        restarted=None,
    )

    check_limit(outcome, "memory_limit_mb")


@pytest.mark.timeout(90)
@SQUASH
def test_cpu_limit_stops_a_hook_that_burns_cpu_past_it(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash, faulty={"cpu_limit_s": 1})

    outcome = check_contained(
        rig,
        fault="burn_cpu",
        arg=60.0,
        expected=ResourceLimitExceeded,
        squash=squash,
        restarted=True,
    )

    check_limit(outcome, "cpu_limit_s")


@pytest.mark.timeout(60)
@SQUASH
def test_open_files_limit_stops_a_hook_that_opens_past_it(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash, faulty={"max_open_files": 32})

    outcome = check_contained(
        rig,
        fault="open_files",
        arg=5000,
        expected=ResourceLimitExceeded,
        squash=squash,
        restarted=None,
    )

    check_limit(outcome, "max_open_files")
