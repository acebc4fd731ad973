"""Point 4: each hook and callback receives only the names in its signature."""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError, RiggerBasePlugin, RiggerError


class Picky(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("pick")
        self.register_plugin_hook("everything")
        self.register_plugin_hook("needy")
        self.register_plugin_hook("defaults")

    def pick(self, wanted):
        return None, {"got": wanted}

    def everything(self, **kwargs):
        return None, {"keys": sorted(kwargs), "x_value": kwargs.get("x")}

    def needy(self, first_needed, second_needed, present):
        return None

    def defaults(self, maybe="fallback"):
        return None, {"maybe": maybe}


@pytest.fixture
def rig(make_rigger):
    return make_rigger({"p": {"plugin": "picky"}}, register={"picky": Picky})


def test_hook_receives_only_the_names_it_asks_for(rig):
    rig.fire_hook("pick", wanted=1, unwanted=2, also_unwanted=3)
    assert rig.global_data["got"] == 1


def test_local_value_overrides_global_value(rig):
    rig.global_data["wanted"] = "global"
    rig.fire_hook("pick", wanted="local")
    assert rig.global_data["got"] == "local"


def test_global_value_is_used_when_local_lacks_the_name(rig):
    rig.global_data["wanted"] = "global"
    rig.fire_hook("pick")
    assert rig.global_data["got"] == "global"


def test_kwargs_hook_receives_the_whole_merged_namespace(rig):
    rig.global_data.update(x="global", g_only=1)
    rig.fire_hook("everything", x="local", l_only=2)
    assert {"x", "g_only", "l_only", "config"} <= set(rig.global_data["keys"])
    assert rig.global_data["x_value"] == "local"


def test_default_is_used_when_neither_namespace_has_the_name(rig):
    rig.fire_hook("defaults")
    assert rig.global_data["maybe"] == "fallback"


def test_missing_hook_arguments_error_names_function_and_names(rig):
    with pytest.raises(HookError) as caught:
        rig.fire_hook("needy", present=1)
    message = str(caught.value)
    assert "needy" in message
    assert "first_needed" in message and "second_needed" in message
    assert "'present'" not in message
    assert caught.value.ident == "p"


def test_missing_callback_argument_error_names_callback_and_names(rig):
    def wants_absent(absent_thing):
        return None

    rig.register_hook_callback("pick", "pre", wants_absent, name="wa")
    with pytest.raises(HookError) as caught:
        rig.fire_hook("pick", wanted=1)
    assert "wants_absent" in str(caught.value)
    assert "absent_thing" in str(caught.value)
    assert caught.value.ident is None


def test_callback_receives_only_the_names_it_asks_for(rig):
    seen = []
    rig.register_hook_callback("pick", "pre", lambda wanted: seen.append(wanted))
    rig.fire_hook("pick", wanted="w", other="o")
    assert seen == ["w"]


class Tripwire:
    """Records every time it is serialised (copying does not count)."""

    pickled = 0

    def __reduce_ex__(self, protocol):
        type(self).pickled += 1
        return (Tripwire, ())

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def test_unselected_global_values_are_not_serialised(rig):
    Tripwire.pickled = 0
    rig.global_data["tripwire"] = Tripwire()
    rig.fire_hook("pick", wanted=1)
    assert Tripwire.pickled == 0


def test_unselected_event_arguments_are_not_serialised(rig):
    Tripwire.pickled = 0
    rig.fire_hook("pick", wanted=1, tripwire=Tripwire())
    assert Tripwire.pickled == 0


def test_tripwire_detects_a_value_sent_to_the_plugin(make_rigger):
    # Control for the two tests above: a value the hook asks for is serialised.
    rig = make_rigger(
        {"p": {"plugin": "picky"}}, register={"picky": Picky}, trusted=True
    )
    Tripwire.pickled = 0
    rig.fire_hook("pick", wanted=Tripwire())
    assert Tripwire.pickled >= 1


def test_unserialisable_argument_fails_before_any_plugin_runs(make_rigger):
    rig = make_rigger(
        {"p": {"plugin": "picky"}, "q": {"plugin": "picky"}},
        register={"picky": Picky},
        squash_exceptions=True,
    )
    with pytest.raises(RiggerError) as caught:
        rig.fire_hook("pick", wanted=(n for n in range(3)))
    assert isinstance(caught.value, TypeError)
    assert "wanted" in str(caught.value)
    assert rig.stats()["p"]["calls"] == rig.stats()["q"]["calls"] == 0


@pytest.mark.parametrize("name", [None, 42, b"pick"], ids=repr)
def test_event_name_that_is_not_a_string_is_refused(rig, name):
    with pytest.raises(RiggerError) as caught:
        rig.fire_hook(name)
    assert isinstance(caught.value, TypeError)
