"""Fault 1: a hook that raises, whatever it raises, is one contained failure."""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError, PluginCrashed

from .containment import check_contained

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])


@pytest.mark.timeout(60)
@SQUASH
@pytest.mark.parametrize(
    "fault, type_name",
    [
        ("raise_exception", "ValueError"),
        ("raise_keyboard_interrupt", "KeyboardInterrupt"),
        ("raise_base_exception", "CustomBaseError"),
    ],
)
def test_raising_hook_is_contained_and_its_traceback_reaches_the_parent(
    rig_factory, squash, fault, type_name
):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig,
        fault=fault,
        arg="marker-41",
        expected=HookError,
        squash=squash,
        restarted=False,
    )

    error = outcome.error
    assert not isinstance(error, PluginCrashed)
    assert error.kind == "exception"
    assert error.remote_traceback is not None
    assert "Traceback (most recent call last)" in error.remote_traceback
    assert f"fault_{fault}" in error.remote_traceback
    assert type_name in error.remote_traceback
    assert "marker-41" in str(error)
    assert error.remote_traceback.strip().splitlines()[-1] in str(error)


@pytest.mark.timeout(60)
@SQUASH
def test_sys_exit_in_a_hook_is_contained_with_its_traceback_and_code(
    rig_factory, squash
):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig, fault="sys_exit", arg=3, expected=HookError, squash=squash, restarted=None
    )

    error = outcome.error
    assert error.remote_traceback is not None
    assert "SystemExit" in error.remote_traceback
    assert "fault_sys_exit" in error.remote_traceback
    if isinstance(error, PluginCrashed):
        assert error.exitcode == 3
