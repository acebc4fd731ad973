"""Point 3: pre-callbacks, then plugin hooks, then post-callbacks; config added."""

from __future__ import annotations

import os

import pytest

from rigger_sandbox import RiggerBasePlugin


class Phased(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("ev")

    def ev(self, trail, config):
        return {"trail": ["hook"], "hook_saw": list(trail)}, {
            "hook_pid": os.getpid(),
            "hook_config_colour": config["plugins"][self.ident]["colour"],
        }


def test_pre_callbacks_then_hooks_then_post_callbacks(make_rigger):
    rig = make_rigger(
        {"p": {"plugin": "phased", "colour": "blue"}},
        register={"phased": Phased},
        start=False,
    )
    seen = {}
    rig.register_hook_callback("ev", "pre", lambda: ({"trail": ["pre"]}, None))
    rig.register_hook_callback("ev", "post", lambda trail: seen.update(post=trail))
    rig.start()

    result = rig.fire_hook("ev", grab_result=True)

    assert result["hook_saw"] == ["pre"]
    assert seen["post"] == ["pre", "hook"]


@pytest.mark.parametrize("threaded", [False, True])
def test_hooks_run_in_plugin_process_and_callbacks_in_parent(make_rigger, threaded):
    rig = make_rigger(
        {"p": {"plugin": "phased", "colour": "blue"}},
        register={"phased": Phased},
        threaded=threaded,
    )
    callback_pids = []

    def record_pid():
        callback_pids.append(os.getpid())

    rig.register_hook_callback("ev", "pre", record_pid, name="pre")
    rig.register_hook_callback("ev", "post", record_pid, name="post")
    rig.fire_hook("ev", trail=[])

    assert callback_pids == [os.getpid(), os.getpid()]
    assert rig.global_data["hook_pid"] == rig.plugin_pids()["p"] != os.getpid()


def test_config_is_in_the_local_namespace_for_hooks_and_callbacks(make_rigger):
    rig = make_rigger(
        {"p": {"plugin": "phased", "colour": "green"}},
        register={"phased": Phased},
        threaded=False,
    )
    seen = {}
    rig.register_hook_callback("ev", "pre", lambda config: seen.update(pre=config))
    rig.fire_hook("ev", trail=[])

    assert rig.global_data["hook_config_colour"] == "green"
    assert seen["pre"]["plugins"]["p"]["colour"] == "green"
    assert seen["pre"]["threaded"] is False


def test_config_is_not_kept_in_the_global_namespace(make_rigger):
    rig = make_rigger(
        {"p": {"plugin": "phased", "colour": "c"}}, register={"phased": Phased}
    )
    rig.fire_hook("ev", trail=[])
    assert "config" not in rig.global_data


def test_disabled_instance_gets_no_process_and_no_call(make_rigger):
    rig = make_rigger(
        {
            "on": {"plugin": "phased", "colour": "a"},
            "off": {"plugin": "phased", "colour": "b", "enabled": False},
        },
        register={"phased": Phased},
    )
    rig.fire_hook("ev", trail=[])
    assert set(rig.plugin_pids()) == {"on"}
    assert rig.global_data["hook_config_colour"] == "a"


class OtherEvent(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("unrelated")

    def unrelated(self):
        return None, {"unrelated_ran": True}


def test_plugin_without_a_hook_for_the_event_is_not_called(make_rigger):
    rig = make_rigger(
        {
            "p": {"plugin": "phased", "colour": "a"},
            "other": {"plugin": "other"},
        },
        register={"phased": Phased, "other": OtherEvent},
    )
    rig.fire_hook("ev", trail=[])
    assert rig.stats()["other"]["calls"] == 0
    assert rig.stats()["p"]["calls"] == 1
    assert "unrelated_ran" not in rig.global_data
