"""Point 5: a hook or callback returns None or a (local, global) pair."""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError, RiggerBasePlugin


class Returner(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("give")

    def give(self, value):
        return value


@pytest.fixture
def rig(make_rigger):
    return make_rigger({"r": {"plugin": "returner"}}, register={"returner": Returner})


def test_none_changes_neither_namespace(rig):
    rig.global_data["kept"] = 1
    local, global_ = rig.process_hook("give", value=None)
    assert global_ == {"kept": 1}
    assert set(local) == {"value", "config"}


def test_pair_updates_local_and_global(rig):
    local, global_ = rig.process_hook("give", value=({"l": 1}, {"g": 2}))
    assert local["l"] == 1
    assert global_["g"] == 2
    assert "l" not in global_


@pytest.mark.parametrize(
    "value", [(None, {"g": 2}), ({"l": 1}, None), (None, None)], ids=repr
)
def test_either_half_of_the_pair_may_be_none(rig, value):
    local, global_ = rig.process_hook("give", value=value)
    expected_local, expected_global = value
    assert {k: local[k] for k in expected_local or {}} == (expected_local or {})
    assert global_ == (expected_global or {})


@pytest.mark.parametrize(
    "value",
    [42, "text", ({"a": 1},), ({"a": 1}, {"b": 2}, {"c": 3}), (["x"], None)],
    ids=["int", "str", "one-tuple", "three-tuple", "list-half"],
)
def test_malformed_hook_return_is_an_error_naming_function_and_value(rig, value):
    with pytest.raises(HookError) as caught:
        rig.fire_hook("give", value=value)
    message = str(caught.value)
    assert "give" in message
    assert repr(value) in message or str(value) in message
    assert caught.value.ident == "r"


def test_malformed_callback_return_is_an_error_naming_callback(rig):
    def returns_garbage():
        return 12345

    rig.register_hook_callback("give", "post", returns_garbage, name="garbage")
    with pytest.raises(HookError) as caught:
        rig.fire_hook("give", value=None)
    assert "returns_garbage" in str(caught.value)
    assert "12345" in str(caught.value)
    assert caught.value.ident is None
