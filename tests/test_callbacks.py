"""Point 12: pre/post callbacks in registration order; unregister any time."""

from __future__ import annotations

import pytest

from rigger_sandbox import RiggerBasePlugin, RiggerError


class Marks(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("ev")

    def ev(self):
        return None, {"hook_ran": True}


@pytest.fixture
def unstarted(make_rigger):
    return make_rigger(
        {"m": {"plugin": "marks"}}, register={"marks": Marks}, start=False
    )


def recorder(calls, label):
    def callback():
        calls.append(label)

    return callback


@pytest.mark.parametrize("ctype", ["pre", "post"])
def test_callbacks_run_in_registration_order(unstarted, ctype):
    calls = []
    for name in ["zeta", "alpha", "mid"]:
        unstarted.register_hook_callback("ev", ctype, recorder(calls, name), name)
    unstarted.start()
    unstarted.fire_hook("ev")
    assert calls == ["zeta", "alpha", "mid"]


def test_callbacks_only_run_for_their_hook(unstarted):
    calls = []
    unstarted.register_hook_callback("other", "pre", recorder(calls, "other"), "o")
    unstarted.start()
    unstarted.fire_hook("ev")
    assert calls == []


@pytest.mark.parametrize("ctype", ["pre", "post"])
def test_unregister_before_start_removes_the_callback(unstarted, ctype):
    calls = []
    unstarted.register_hook_callback("ev", ctype, recorder(calls, "gone"), "gone")
    unstarted.register_hook_callback("ev", ctype, recorder(calls, "kept"), "kept")
    unstarted.unregister_hook_callback("ev", ctype, "gone")
    unstarted.start()
    unstarted.fire_hook("ev")
    assert calls == ["kept"]


@pytest.mark.parametrize("ctype", ["pre", "post"])
def test_unregister_after_start_removes_the_callback(unstarted, ctype):
    calls = []
    unstarted.register_hook_callback("ev", ctype, recorder(calls, "cb"), "cb")
    unstarted.start()
    unstarted.fire_hook("ev")
    unstarted.unregister_hook_callback("ev", ctype, "cb")
    unstarted.fire_hook("ev")
    assert calls == ["cb"]


def test_register_after_start_takes_effect_on_the_next_event(unstarted):
    calls = []
    unstarted.start()
    unstarted.fire_hook("ev")
    unstarted.register_hook_callback("ev", "post", recorder(calls, "late"), "late")
    unstarted.fire_hook("ev")
    assert calls == ["late"]


def test_callback_updates_merge_into_the_namespaces(unstarted):
    unstarted.register_hook_callback(
        "ev", "pre", lambda: ({"from_pre": 1}, {"pre_global": [1]}), "a"
    )
    unstarted.register_hook_callback(
        "ev", "post", lambda from_pre: (None, {"pre_global": [from_pre + 1]}), "b"
    )
    unstarted.start()
    result = unstarted.fire_hook("ev", grab_result=True)
    assert result["from_pre"] == 1
    assert unstarted.global_data == {"pre_global": [1, 2], "hook_ran": True}


def test_callback_ctype_must_be_pre_or_post(unstarted):
    with pytest.raises(RiggerError, match="during") as caught:
        unstarted.register_hook_callback("ev", "during", recorder([], "x"), "x")
    assert "pre" in str(caught.value) and "post" in str(caught.value)
