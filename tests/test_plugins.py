"""Point 1: plugins, their hooks, ident, data, configure and check_configured."""

from __future__ import annotations

import os

import pytest

from rigger_sandbox import RiggerError

from .sample_plugins import DoubleRegistration, Echo, Introspect


def test_hook_without_callback_binds_method_named_like_event(make_rigger):
    rig = make_rigger({"e": {"plugin": "echo"}}, register={"echo": Echo})
    rig.fire_hook("ping")
    assert "e" in rig.global_data["pinged"]


def test_plugin_sees_its_ident_and_instance_data(make_rigger):
    rig = make_rigger(
        {"mine": {"plugin": "intro", "colour": "red", "sizes": [1, 2]}},
        register={"intro": Introspect},
    )
    rig.fire_hook("whoami")
    seen = rig.global_data["mine"]
    assert seen["ident"] == "mine"
    assert seen["data"]["colour"] == "red"
    assert seen["data"]["sizes"] == [1, 2]


def test_configured_flag_is_false_until_configure_plugin(make_rigger):
    rig = make_rigger({"p": {"plugin": "intro"}}, register={"intro": Introspect})
    rig.fire_hook("whoami")
    assert rig.global_data["p"]["configured"] is False


def test_configure_runs_in_the_plugin_process_with_the_given_arguments(make_rigger):
    rig = make_rigger({"p": {"plugin": "intro"}}, register={"intro": Introspect})
    rig.configure_plugin("p", "alpha", 2, flag=True)
    rig.fire_hook("whoami")
    seen = rig.global_data["p"]
    assert seen["configured"] is True
    assert seen["configure_args"] == [["alpha", 2], {"flag": True}]
    assert seen["configure_pid"] == rig.plugin_pids()["p"] != os.getpid()


def test_configure_before_start_is_applied_at_start(make_rigger):
    rig = make_rigger(
        {"p": {"plugin": "intro"}}, register={"intro": Introspect}, start=False
    )
    rig.configure_plugin("p", "early")
    rig.start()
    rig.fire_hook("whoami")
    assert rig.global_data["p"]["configure_args"] == [["early"], {}]


def test_check_configured_hook_does_nothing_until_configured(make_rigger):
    rig = make_rigger({"p": {"plugin": "intro"}}, register={"intro": Introspect})
    rig.fire_hook("configured_only", tag="before")
    assert "configured_hook_ran" not in rig.global_data

    rig.configure_plugin("p")
    rig.fire_hook("configured_only", tag="after")
    assert rig.global_data["configured_hook_ran"] == ["p:after"]


def test_check_configured_applies_per_instance(make_rigger):
    rig = make_rigger(
        {"a": {"plugin": "intro"}, "b": {"plugin": "intro"}},
        register={"intro": Introspect},
    )
    rig.configure_plugin("b")
    rig.fire_hook("configured_only", tag="t")
    assert rig.global_data["configured_hook_ran"] == ["b:t"]


def test_instances_of_one_class_each_get_their_own_process(make_rigger):
    rig = make_rigger(
        {"one": {"plugin": "echo"}, "two": {"plugin": "echo"}},
        register={"echo": Echo},
    )
    rig.fire_hook("ping")
    pids = rig.global_data["pinged"]
    assert set(pids) == {"one", "two"}
    assert pids["one"] != pids["two"]
    assert os.getpid() not in pids.values()
    assert pids == rig.plugin_pids()


def test_second_function_for_the_same_event_is_refused(make_rigger):
    rig = make_rigger(
        {"d": {"plugin": "double"}},
        register={"double": DoubleRegistration},
        start=False,
    )
    with pytest.raises(RiggerError, match="twice"):
        rig.start()
