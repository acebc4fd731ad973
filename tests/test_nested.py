"""Point 10: events a hook fires run after the current event, bounded in depth."""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError, NestedEventError

from .sample_plugins import Nester, append_line, read_lines


@pytest.fixture
def nester(make_rigger, tmp_path):
    def build(**settings):
        return make_rigger(
            {"n": {"plugin": "nester", "out": str(tmp_path)}},
            register={"nester": Nester},
            **settings,
        )

    return build


def test_nested_events_run_after_the_event_in_request_order(nester, tmp_path):
    rig = nester()
    trace = tmp_path / "trace.txt"
    rig.register_hook_callback(
        "outer", "post", lambda: append_line(trace, "outer post")
    )
    rig.fire_hook("outer")
    assert read_lines(trace) == ["outer done", "outer post", "inner x1", "inner x2"]


def test_nested_event_updates_merge_before_outer_fire_hook_returns(nester):
    rig = nester()
    rig.fire_hook("outer")
    assert rig.global_data["inner_seen"] == ["x1", "x2"]


def test_nested_fire_hook_returns_nothing_to_the_plugin(nester):
    rig = nester()
    rig.fire_hook("outer")
    assert rig.global_data["nested_return"] == "None"


def test_nested_events_do_not_see_the_outer_local_namespace(nester):
    rig = nester()
    seen = {}
    rig.register_hook_callback("inner", "pre", lambda **ns: seen.update(ns))
    rig.fire_hook("outer", outer_only="local value")
    assert seen["tag"] == "x2"
    assert "outer_only" not in seen


def test_chain_deeper_than_configured_bound_is_an_error(nester, tmp_path):
    rig = nester(max_nested_depth=5)
    with pytest.raises(NestedEventError):
        rig.fire_hook("chain", depth=0)
    depths = [int(line) for line in read_lines(tmp_path / "chain.txt")]
    assert depths == list(range(len(depths)))
    assert len(depths) in (5, 6)


def test_chain_is_stopped_by_the_default_bound(nester, tmp_path):
    rig = nester()
    with pytest.raises(NestedEventError):
        rig.fire_hook("chain", depth=0)
    assert len(read_lines(tmp_path / "chain.txt")) in (32, 33)


def test_too_many_nested_events_for_one_event_is_an_error(nester):
    # The bound may be enforced in the parent (NestedEventError) or in the
    # plugin, failing the flooding hook (HookError); either names the key.
    rig = nester(max_nested_events=10)
    with pytest.raises((NestedEventError, HookError), match="max_nested_events"):
        rig.fire_hook("flood", count=50)
    assert len(rig.global_data.get("inner_seen", [])) <= 10


def test_rigger_keeps_working_after_a_nested_bound_error(nester):
    rig = nester(max_nested_depth=3)
    with pytest.raises(NestedEventError):
        rig.fire_hook("chain", depth=0)
    rig.fire_hook("outer")
    assert rig.global_data["inner_seen"] == ["x1", "x2"]
