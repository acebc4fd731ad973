"""Fault 11: bad caller input is a clear RiggerError, raised before anything is sent."""

from __future__ import annotations

import socket

import pytest

from rigger_sandbox import RiggerError, RiggerStateError

from .conftest import FAULTY, GOOD
from .containment import fire


def assert_nothing_ran(rig, calls_before):
    assert {ident: s["calls"] for ident, s in rig.stats().items()} == calls_before
    assert rig.global_data["seen"] == {ident: [1] for ident in (*GOOD, FAULTY)}


def calls(rig):
    return {ident: s["calls"] for ident, s in rig.stats().items()}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])
@pytest.mark.parametrize("kind", ["socket", "generator"])
def test_unserializable_argument_is_refused_naming_it_before_any_hook_runs(
    rig_factory, squash, kind
):
    rig = rig_factory(squash_exceptions=squash)
    fire(rig, 1)
    before = calls(rig)

    with socket.socket() as sock:
        value = sock if kind == "socket" else (n for n in range(3))
        with pytest.raises(RiggerError) as caught:
            rig.fire_hook("work", seq=2, arg=value)

    assert isinstance(caught.value, TypeError)
    assert "'arg'" in str(caught.value)
    assert type(value).__name__ in str(caught.value)
    assert_nothing_ran(rig, before)
    assert rig.failures == []
    assert fire(rig, 3)[f"done_{FAULTY}"] == 3


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", [42, None, b"work", ("work",)], ids=repr)
def test_hook_name_that_is_not_a_string_is_refused(rig_factory, name):
    rig = rig_factory(squash_exceptions=True)
    fire(rig, 1)
    before = calls(rig)

    with pytest.raises(RiggerError) as caught:
        rig.fire_hook(name, seq=2)

    assert isinstance(caught.value, TypeError)
    assert repr(name) in str(caught.value)
    assert_nothing_ran(rig, before)
    assert fire(rig, 3)[f"done_{FAULTY}"] == 3


@pytest.mark.timeout(60)
def test_fire_hook_after_shutdown_is_a_state_error(rig_factory):
    rig = rig_factory()
    fire(rig, 1)
    rig.shutdown()

    with pytest.raises(RiggerStateError) as caught:
        rig.fire_hook("work", seq=2)

    assert isinstance(caught.value, RuntimeError)
    assert "shutdown" in str(caught.value)
    assert rig.global_data["seen"] == {ident: [1] for ident in (*GOOD, FAULTY)}


@pytest.mark.timeout(60)
def test_fire_hook_before_start_is_a_state_error(rig_factory):
    rig = rig_factory(start=False)

    with pytest.raises(RiggerStateError) as caught:
        rig.fire_hook("work", seq=1)

    assert "start" in str(caught.value)
