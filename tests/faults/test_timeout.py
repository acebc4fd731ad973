"""Fault 3: a hook that hangs is ended by its timeout, wherever that is set."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from rigger_sandbox import HookTimeout

from .conftest import FAULTY, wait_until
from .containment import check_contained, fire

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])


def check_timed_out(outcome, ready, timeout):
    error = outcome.error
    assert isinstance(error, TimeoutError)
    assert error.kind == "timeout"
    assert error.timeout == timeout
    assert int(ready.read_text()) == outcome.old_pid, "the hook never started"


@pytest.mark.timeout(60)
@SQUASH
def test_top_level_timeout_ends_a_hanging_hook(rig_factory, tmp_path, squash):
    rig = rig_factory(squash_exceptions=squash, timeout=1)
    ready = tmp_path / "in-hook"

    outcome = check_contained(
        rig,
        fault="hang",
        arg=str(ready),
        expected=HookTimeout,
        squash=squash,
        restarted=True,
    )

    check_timed_out(outcome, ready, 1)


@pytest.mark.timeout(60)
@SQUASH
def test_instance_timeout_ends_a_hanging_hook(rig_factory, tmp_path, squash):
    rig = rig_factory(squash_exceptions=squash, faulty={"timeout": 1.5})
    ready = tmp_path / "in-hook"

    outcome = check_contained(
        rig,
        fault="hang",
        arg=str(ready),
        expected=HookTimeout,
        squash=squash,
        restarted=True,
    )

    check_timed_out(outcome, ready, 1.5)


@pytest.mark.timeout(60)
@SQUASH
def test_hook_timeout_overrides_a_longer_instance_timeout(
    rig_factory, tmp_path, squash
):
    rig = rig_factory(
        squash_exceptions=squash,
        timeout=600,
        faulty={"plugin": "slow_hook", "timeout": 600, "hook_timeout": 1},
    )
    ready = tmp_path / "in-hook"

    outcome = check_contained(
        rig,
        fault="hang",
        arg=str(ready),
        expected=HookTimeout,
        squash=squash,
        restarted=True,
    )

    check_timed_out(outcome, ready, 1)


@pytest.mark.timeout(60)
@SQUASH
def test_plugin_that_ignores_sigterm_is_still_ended_at_its_timeout(
    rig_factory, tmp_path, squash
):
    rig = rig_factory(squash_exceptions=squash, faulty={"timeout": 1})
    ready = tmp_path / "in-hook"

    outcome = check_contained(
        rig,
        fault="hang_ignoring_sigterm",
        arg=str(ready),
        expected=HookTimeout,
        squash=squash,
        restarted=True,
    )

    check_timed_out(outcome, ready, 1)


@pytest.mark.timeout(60)
def test_hook_timeout_none_lifts_the_instance_timeout(rig_factory, tmp_path):
    instance_timeout = 1.0
    rig = rig_factory(
        squash_exceptions=False,
        faulty={
            "plugin": "slow_hook",
            "timeout": instance_timeout,
            "hook_timeout": None,
        },
    )
    ready = tmp_path / "in-hook"

    def release_after_the_instance_timeout() -> None:
        wait_until(ready.exists, 30.0, "the hook started")
        # The behaviour under test is the clock: outlast the instance timeout.
        passed_at = time.monotonic() + 2 * instance_timeout
        while time.monotonic() < passed_at:
            time.sleep(0.05)
        Path(f"{ready}.release").write_text(f"{os.getpid()}\n")

    releaser = threading.Thread(target=release_after_the_instance_timeout)
    releaser.start()
    try:
        result = fire(rig, 1, fault="wait_for_release", arg=str(ready))
    finally:
        releaser.join(60)

    assert result[f"done_{FAULTY}"] == 1
    assert rig.stats()[FAULTY]["max_ms"] >= instance_timeout * 1000
    assert sum(rig.stats()[FAULTY]["failures"].values()) == 0
