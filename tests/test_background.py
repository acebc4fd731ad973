"""Point 11: background hooks do not block the event; shutdown waits for them."""

from __future__ import annotations

import time

import pytest

from rigger_sandbox import Rigger

from .sample_plugins import Background, Releaser, WaitsForGo


class GoOnShutdown(Rigger):
    """Releases waiting background hooks at the very start of shutdown."""

    go_file = None

    def shutdown(self, *args, **kwargs):
        if self.go_file is not None and not self.go_file.exists():
            self.go_file.touch()
        return super().shutdown(*args, **kwargs)


def wait_for_global(rig, key, timeout=20.0):
    """Fire no-op events until a background update shows up, to a deadline."""
    deadline = time.monotonic() + timeout
    while key not in rig.global_data:
        if time.monotonic() > deadline:
            pytest.fail(f"{key!r} never merged into global_data")
        rig.fire_hook("noop")
        time.sleep(0.02)


@pytest.fixture
def bg_rig(make_rigger, tmp_path):
    return make_rigger(
        {"bg": {"plugin": "background", "out": str(tmp_path)}},
        register={"background": Background},
        rigger_cls=GoOnShutdown,
    )


def test_bg_hook_does_not_block_fire_hook(bg_rig, tmp_path):
    # The hook cannot finish before "go" exists, which is only after fire_hook.
    bg_rig.fire_hook("slow")
    assert not (tmp_path / "finished").exists()
    assert "bg_done" not in bg_rig.global_data
    (tmp_path / "go").touch()
    wait_for_global(bg_rig, "bg_done")


def test_bg_hook_global_updates_merge_and_local_updates_drop(bg_rig, tmp_path):
    bg_rig.fire_hook("slow")
    (tmp_path / "go").touch()
    wait_for_global(bg_rig, "bg_done")
    assert bg_rig.global_data["bg_done"] == ["bg"]
    assert "bg_local" not in bg_rig.fire_hook("noop", grab_result=True)


def test_shutdown_waits_for_outstanding_bg_hooks(bg_rig, tmp_path):
    bg_rig.go_file = tmp_path / "go"
    bg_rig.fire_hook("slow")
    assert not (tmp_path / "finished").exists()
    bg_rig.shutdown()
    assert (tmp_path / "finished").exists()
    assert bg_rig.global_data["bg_done"] == ["bg"]
    assert "bg_local" not in bg_rig.global_data


def test_background_instance_runs_every_hook_in_background(make_rigger, tmp_path):
    rig = make_rigger(
        {"w": {"plugin": "waits", "out": str(tmp_path), "background": True}},
        register={"waits": WaitsForGo},
        rigger_cls=GoOnShutdown,
    )
    rig.fire_hook("slow")
    assert not (tmp_path / "finished").exists()
    (tmp_path / "go").touch()
    wait_for_global(rig, "bg_done")
    assert rig.global_data["bg_done"] == ["w"]


@pytest.mark.parametrize("threaded", [False, True])
def test_bg_update_never_lands_inside_an_event_merge(make_rigger, tmp_path, threaded):
    out = str(tmp_path)
    rig = make_rigger(
        {
            "a": {"plugin": "releaser", "out": out, "release": True},
            "bg": {"plugin": "background", "out": out},
            "b": {"plugin": "releaser", "out": out},
        },
        register={"releaser": Releaser, "background": Background},
        threaded=threaded,
    )
    rig.fire_hook("slow")
    rig.fire_hook("fg")
    wait_for_global(rig, "bg_done")
    assert rig.global_data["seq"] in (["bg", "a", "b"], ["a", "b", "bg"])
