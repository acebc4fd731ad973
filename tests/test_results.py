"""Point 8: fire_hook's result, process_hook, and in-order synchronous events."""

from __future__ import annotations

import pytest

from .sample_plugins import Appender, Finisher, read_lines


@pytest.fixture
def rig(make_rigger, tmp_path):
    return make_rigger(
        {
            "f": {
                "plugin": "finisher",
                "out": str(tmp_path),
                "local_updates": {"x": "local", "only_local": 1},
                "global_updates": {"only_global": 2},
            }
        },
        register={"finisher": Finisher},
    )


def test_fire_hook_returns_none_without_grab_result(rig):
    assert rig.fire_hook("work", event_id=1) is None


def test_grab_result_returns_global_and_local_with_local_winning(rig):
    rig.global_data["x"] = "global"
    result = rig.fire_hook("work", event_id=1, grab_result=True)
    assert result["x"] == "local"
    assert result["only_local"] == 1
    assert result["only_global"] == 2
    assert result["event_id"] == 1
    assert result["config"]["plugins"]["f"]["plugin"] == "finisher"
    assert rig.global_data["x"] == "global"


def test_grab_result_is_a_snapshot_not_the_live_global_namespace(rig):
    result = rig.fire_hook("work", event_id=1, grab_result=True)
    result["only_global"] = "changed by caller"
    assert rig.global_data["only_global"] == 2


def test_process_hook_returns_local_then_global_namespace(rig):
    rig.global_data["seeded"] = True
    local, global_ = rig.process_hook("work", event_id=7)
    assert local["only_local"] == 1 and local["event_id"] == 7
    assert "only_global" not in local
    assert global_ == {"seeded": True, "only_global": 2}


def test_event_is_complete_when_fire_hook_returns(rig, tmp_path):
    rig.fire_hook("work", event_id=3)
    assert (tmp_path / "3-f.done").exists()


def test_events_fired_from_one_thread_are_handled_in_order(make_rigger, tmp_path):
    rig = make_rigger(
        {"a": {"plugin": "appender", "out": str(tmp_path)}},
        register={"appender": Appender},
    )
    seen = []
    rig.register_hook_callback("step", "post", lambda tag: seen.append(tag))
    for tag in range(5):
        rig.fire_hook("step", tag=tag)
    assert seen == [0, 1, 2, 3, 4]
    assert read_lines(tmp_path / "order.txt") == ["a"] * 5
