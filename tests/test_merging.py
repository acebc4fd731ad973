"""Point 6: recursive_update, namespace lifetimes and configuration-order merge."""

from __future__ import annotations

import pytest

from rigger_sandbox import recursive_update

from .sample_plugins import Counter, Finisher


def test_recursive_update_merges_mappings_at_every_depth():
    orig = {"a": {"b": {"c": 1, "d": 2}, "e": 3}}
    recursive_update(orig, {"a": {"b": {"c": 10, "x": 4}}})
    assert orig == {"a": {"b": {"c": 10, "d": 2, "x": 4}, "e": 3}}


def test_recursive_update_extends_a_list_with_a_list():
    orig = {"items": [1, 2], "deep": {"items": ["a"]}}
    recursive_update(orig, {"items": [3], "deep": {"items": ["b"]}})
    assert orig == {"items": [1, 2, 3], "deep": {"items": ["a", "b"]}}


@pytest.mark.parametrize(
    "old, new",
    [(1, 2), ("s", "t"), ([1], "t"), ({"k": 1}, 5), (1, [2]), (None, {"k": 1})],
    ids=repr,
)
def test_recursive_update_replaces_anything_else(old, new):
    orig = {"key": old}
    recursive_update(orig, {"key": new})
    assert orig == {"key": new}


def test_recursive_update_updates_in_place_and_returns_orig():
    orig = {"a": 1}
    assert recursive_update(orig, {"b": 2}) is orig
    assert orig == {"a": 1, "b": 2}


def test_recursive_update_does_not_alias_the_update_lists():
    update = {"items": [1]}
    orig = recursive_update({}, update)
    recursive_update(orig, {"items": [2]})
    assert update == {"items": [1]}


def finisher(tmp_path, **data):
    return {"plugin": "finisher", "out": str(tmp_path), **data}


def test_global_namespace_persists_and_local_is_dropped_per_event(
    make_rigger, tmp_path
):
    rig = make_rigger(
        {"f": finisher(tmp_path, local_updates={"tmp": 1}, global_updates={"keep": 1})},
        register={"finisher": Finisher},
    )
    rig.fire_hook("work", event_id=1)
    local, global_ = rig.process_hook("work", event_id=2)
    assert rig.global_data == global_ == {"keep": 1}
    assert "tmp" in local
    assert "tmp" not in rig.fire_hook("other", grab_result=True)


def test_global_data_seeded_before_start_is_visible_to_hooks(make_rigger):
    rig = make_rigger(
        {"c": {"plugin": "counter"}}, register={"counter": Counter}, start=False
    )
    rig.global_data.update(n=41, log=[])
    rig.start()
    rig.fire_hook("count")
    assert rig.global_data["n"] == 42


@pytest.mark.parametrize("threaded", [False, True])
def test_hooks_of_one_phase_all_see_the_namespace_before_the_phase(
    make_rigger, threaded
):
    rig = make_rigger(
        {"a": {"plugin": "counter"}, "b": {"plugin": "counter"}},
        register={"counter": Counter},
        threaded=threaded,
    )
    rig.global_data.update(n=0, log=[])
    rig.fire_hook("count")
    assert rig.global_data["n"] == 1
    assert rig.global_data["log"] == ["a saw []", "b saw []"]


def test_merge_is_in_configuration_order_when_first_finishes_last(
    make_rigger, tmp_path
):
    rig = make_rigger(
        {
            "first": finisher(
                tmp_path,
                after="second",
                global_updates={"order": ["first"], "last": "first"},
            ),
            "second": finisher(
                tmp_path, global_updates={"order": ["second"], "last": "second"}
            ),
        },
        register={"finisher": Finisher},
        threaded=True,
    )
    rig.fire_hook("work", event_id=1)
    assert rig.global_data == {"order": ["first", "second"], "last": "second"}


def run_mixed_events(make_rigger, tmp_path, threaded):
    """Fire a fixed series of events; with threads, replies come back reversed."""
    out = tmp_path / ("threaded" if threaded else "sequential")
    out.mkdir()
    plugins = {
        "p1": finisher(
            out,
            after="p2",
            local_updates={"l": {"who": "p1", "seen": ["p1"]}},
            global_updates={
                "tree": {"a": 1, "shared": "p1"},
                "seq": ["p1"],
                "scalar": "p1",
            },
        ),
        "p2": finisher(
            out,
            after="p3",
            local_updates={"l": {"who": "p2", "seen": ["p2"]}},
            global_updates={
                "tree": {"b": {"deep": [2]}, "shared": "p2"},
                "seq": ["p2"],
                "scalar": "p2",
            },
        ),
        "p3": finisher(
            out,
            local_updates={"l": {"seen": ["p3"]}},
            global_updates={"tree": {"b": {"deep": [3]}}, "seq": ["p3"]},
        ),
    }
    rig = make_rigger(plugins, register={"finisher": Finisher}, threaded=threaded)
    rig.global_data["seq"] = ["seed"]
    results = []
    for event_id in range(3):
        result = rig.fire_hook("work", event_id=event_id, grab_result=True)
        result.pop("config")
        results.append(result)
    rig.shutdown()
    return rig.global_data, results


def test_threaded_and_sequential_runs_leave_identical_namespaces(make_rigger, tmp_path):
    sequential = run_mixed_events(make_rigger, tmp_path, threaded=False)
    threaded = run_mixed_events(make_rigger, tmp_path, threaded=True)
    assert threaded == sequential
    global_data, results = sequential
    assert global_data["seq"] == ["seed"] + ["p1", "p2", "p3"] * 3
    assert results[0]["l"] == {"who": "p2", "seen": ["p1", "p2", "p3"]}
