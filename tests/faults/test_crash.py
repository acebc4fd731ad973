"""Fault 2: the plugin process exits, is killed from outside, or crashes mid-hook."""

from __future__ import annotations

import signal

import pytest

from rigger_sandbox import PluginCrashed, ResourceLimitExceeded

from .conftest import FAULTY
from .containment import check_contained
from .killer import Killer

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])


@pytest.mark.timeout(90)
@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
@pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])
def test_os_exit_mid_hook_is_a_crash_with_the_exit_code(
    rig_factory, start_method, threaded, squash
):
    rig = rig_factory(
        squash_exceptions=squash, threaded=threaded, start_method=start_method
    )

    outcome = check_contained(
        rig,
        fault="os_exit",
        arg=7,
        expected=PluginCrashed,
        squash=squash,
        restarted=True,
    )

    error = outcome.error
    assert not isinstance(error, ResourceLimitExceeded)
    assert error.kind == "crash"
    assert error.exitcode == 7 and error.signal is None
    assert "7" in str(error)


@pytest.mark.timeout(60)
@SQUASH
@pytest.mark.parametrize(
    "fault, signum",
    [("segfault", signal.SIGSEGV), ("abort", signal.SIGABRT)],
    ids=["sigsegv", "sigabrt"],
)
def test_native_crash_mid_hook_is_a_crash_naming_the_signal(
    rig_factory, squash, fault, signum
):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig, fault=fault, expected=PluginCrashed, squash=squash, restarted=True
    )

    error = outcome.error
    assert error.kind == "crash"
    assert error.signal == signum
    assert error.signal_name == signum.name
    assert signum.name in str(error)


@pytest.mark.timeout(60)
@SQUASH
@pytest.mark.parametrize(
    "signum", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name
)
def test_signal_from_outside_mid_hook_is_a_crash_naming_the_signal(
    rig_factory, tmp_path, squash, signum
):
    rig = rig_factory(squash_exceptions=squash)
    ready = tmp_path / "in-hook"
    killer = Killer(ready, signum)

    outcome = check_contained(
        rig,
        fault="wait_to_be_killed",
        arg=str(ready),
        expected=PluginCrashed,
        squash=squash,
        restarted=True,
        during=lambda: killer.arm(rig.plugin_pids()[FAULTY]),
    )

    killer.check()
    error = outcome.error
    assert killer.target == outcome.old_pid
    assert error.signal == signum and error.signal_name == signum.name
    assert signum.name in str(error)
