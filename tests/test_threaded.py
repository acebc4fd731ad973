"""Point 7: threaded runs hooks at the same time; sequential in config order."""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError

from .sample_plugins import Appender, Rendezvous, read_lines


def rendezvous_plugins(tmp_path, idents):
    return {
        ident: {
            "plugin": "rendezvous",
            "out": str(tmp_path),
            "peers": [peer for peer in idents if peer != ident],
        }
        for ident in idents
    }


def test_threaded_hooks_run_at_the_same_time(make_rigger, tmp_path):
    # Each hook returns only once the other has entered its hook: they can only
    # both complete if the two plugin processes run them concurrently.
    rig = make_rigger(
        rendezvous_plugins(tmp_path, ["a", "b"]),
        register={"rendezvous": Rendezvous},
        threaded=True,
    )
    rig.fire_hook("meet")
    assert rig.global_data["met"] == ["a", "b"]


def test_threaded_runs_every_plugin_at_once_not_in_pairs(make_rigger, tmp_path):
    rig = make_rigger(
        rendezvous_plugins(tmp_path, ["a", "b", "c"]),
        register={"rendezvous": Rendezvous},
        threaded=True,
    )
    rig.fire_hook("meet")
    assert rig.global_data["met"] == ["a", "b", "c"]


def test_sequential_hooks_cannot_meet(make_rigger, tmp_path):
    # Control for the rendezvous: run one after another, the first gives up.
    plugins = rendezvous_plugins(tmp_path, ["a", "b"])
    plugins["a"]["deadline_s"] = 2.0
    rig = make_rigger(
        plugins,
        register={"rendezvous": Rendezvous},
        threaded=False,
        squash_exceptions=False,
    )
    with pytest.raises(HookError, match="did not appear") as caught:
        rig.fire_hook("meet")
    assert caught.value.ident == "a"


def test_sequential_hooks_run_in_configuration_order(make_rigger, tmp_path):
    idents = ["zulu", "alpha", "mike", "bravo"]
    rig = make_rigger(
        {ident: {"plugin": "appender", "out": str(tmp_path)} for ident in idents},
        register={"appender": Appender},
        threaded=False,
    )
    rig.fire_hook("step")
    rig.fire_hook("step")
    assert read_lines(tmp_path / "order.txt") == idents * 2
