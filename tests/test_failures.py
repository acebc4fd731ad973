"""Point 9: a failing hook or callback, squashed or raised; restart after death."""

from __future__ import annotations

import logging
import signal

import pytest

from rigger_sandbox import HookError, PluginCrashed, Rigger, RiggerBasePlugin

from .sample_plugins import Faulty, Good, Phoenix, read_lines


class Collecting(Rigger):
    """Keeps every failure handed to handle_failure."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failures = []

    def handle_failure(self, error):
        self.failures.append(error)


FAILURES = {
    "raise": HookError,
    "missing": HookError,
    "malformed": HookError,
    "exit": PluginCrashed,
    "sigkill": PluginCrashed,
}


def build(make_rigger, mode, squash, start_method="forkserver"):
    """Instances good_before, bad (failing as mode says), good_after."""
    rig = make_rigger(
        {
            "good_before": {"plugin": "good"},
            "bad": {"plugin": "faulty", "mode": mode},
            "good_after": {"plugin": "good"},
        },
        register={"good": Good, "faulty": Faulty},
        rigger_cls=Collecting,
        squash_exceptions=squash,
        start_method=start_method,
        start=False,
    )
    post_calls = []
    rig.register_hook_callback("go", "post", lambda: post_calls.append("post"))
    rig.start()
    return rig, post_calls


def check_error(error, mode):
    assert isinstance(error, FAILURES[mode])
    if FAILURES[mode] is HookError:
        assert not isinstance(error, PluginCrashed)
    assert error.ident == "bad"
    assert error.hook == "go"
    if mode == "raise":
        assert "boom from faulty" in str(error)
        assert "ValueError" in error.remote_traceback
    elif mode == "missing":
        assert "absent_value" in str(error)
    elif mode == "malformed":
        assert "42" in str(error)
    elif mode == "exit":
        assert error.exitcode == 7
    elif mode == "sigkill":
        assert error.signal == signal.SIGKILL
        assert error.signal_name == "SIGKILL"


@pytest.mark.parametrize("mode", list(FAILURES))
def test_squashed_failure_goes_to_handle_failure_and_event_continues(make_rigger, mode):
    rig, post_calls = build(make_rigger, mode, squash=True)
    result = rig.fire_hook("go", grab_result=True)

    assert len(rig.failures) == 1
    check_error(rig.failures[0], mode)
    assert rig.global_data == {"good": ["good_before", "good_after"]}
    assert result["good_local"] == ["good_before", "good_after"]
    assert post_calls == ["post"]


@pytest.mark.parametrize("mode", list(FAILURES))
def test_raised_failure_keeps_other_updates_and_skips_post_callbacks(make_rigger, mode):
    rig, post_calls = build(make_rigger, mode, squash=False)
    with pytest.raises(FAILURES[mode]) as caught:
        rig.fire_hook("go")

    check_error(caught.value, mode)
    assert rig.global_data == {"good": ["good_before", "good_after"]}
    assert post_calls == []
    assert rig.failures == []


@pytest.mark.parametrize("threaded", [False, True])
def test_crash_is_contained_in_threaded_and_sequential_runs(make_rigger, threaded):
    rig = make_rigger(
        {"bad": {"plugin": "faulty", "mode": "sigkill"}, "good": {"plugin": "good"}},
        register={"good": Good, "faulty": Faulty},
        threaded=threaded,
        squash_exceptions=True,
    )
    rig.fire_hook("go")
    assert rig.global_data == {"good": ["good"]}


def test_default_handle_failure_logs_the_remote_traceback(make_rigger, caplog):
    caplog.set_level(logging.DEBUG, logger="rigger_sandbox")
    rig = make_rigger({}, start=False)
    error = HookError("x", ident="bad", hook="go", remote_traceback="marker-tb")
    rig.handle_failure(error)
    assert any(
        "marker-tb" in record.getMessage() or "marker-tb" in (record.exc_text or "")
        for record in caplog.records
        if record.name.startswith("rigger_sandbox")
    )


def test_squashed_failure_is_logged_with_traceback_by_default(make_rigger, caplog):
    caplog.set_level(logging.DEBUG, logger="rigger_sandbox")
    rig = make_rigger(
        {"bad": {"plugin": "faulty", "mode": "raise"}},
        register={"faulty": Faulty},
        squash_exceptions=True,
    )
    rig.fire_hook("go")
    text = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if record.name.startswith("rigger_sandbox")
    )
    assert "boom from faulty" in text
    assert "Traceback" in text
    assert "bad" in text


class Unused(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("go")

    def go(self):
        return None, {"hook_ran": True}


def raising_callback():
    raise RuntimeError("callback boom")


@pytest.mark.parametrize("ctype", ["pre", "post"])
def test_squashed_callback_failure_goes_to_handle_failure(make_rigger, ctype):
    rig = make_rigger(
        {"u": {"plugin": "unused"}},
        register={"unused": Unused},
        rigger_cls=Collecting,
        squash_exceptions=True,
    )
    later = []
    rig.register_hook_callback("go", ctype, raising_callback, name="bad")
    rig.register_hook_callback("go", ctype, lambda: later.append(1), name="later")
    rig.register_hook_callback("go", "post", lambda: later.append(2), name="last")

    rig.fire_hook("go")

    [error] = rig.failures
    assert isinstance(error, HookError) and error.ident is None
    assert error.hook == "go"
    assert "callback boom" in str(error)
    assert rig.global_data == {"hook_ran": True}
    assert later == [1, 2]


def test_raised_pre_callback_failure_skips_post_callbacks(make_rigger):
    rig = make_rigger(
        {"u": {"plugin": "unused"}},
        register={"unused": Unused},
        squash_exceptions=False,
    )
    later = []
    rig.register_hook_callback("go", "pre", raising_callback, name="bad")
    rig.register_hook_callback(
        "go", "pre", lambda: ({"x": 1}, {"pre_ok": 1}), name="other_pre"
    )
    rig.register_hook_callback("go", "post", lambda: later.append("post"))

    with pytest.raises(HookError, match="callback boom") as caught:
        rig.fire_hook("go")

    assert caught.value.ident is None
    assert rig.global_data["pre_ok"] == 1
    assert later == []


def test_raised_post_callback_failure_raises_after_other_posts(make_rigger):
    rig = make_rigger(
        {"u": {"plugin": "unused"}},
        register={"unused": Unused},
        squash_exceptions=False,
    )
    rig.register_hook_callback("go", "post", raising_callback, name="bad")
    rig.register_hook_callback("go", "post", lambda: (None, {"post_ok": 1}), name="ok")
    with pytest.raises(HookError, match="callback boom"):
        rig.fire_hook("go")
    assert rig.global_data == {"hook_ran": True, "post_ok": 1}


def phoenix_rig(make_rigger, tmp_path, start_method):
    rig = make_rigger(
        {"phx": {"plugin": "phoenix", "out": str(tmp_path)}},
        register={"phoenix": Phoenix},
        squash_exceptions=True,
        start_method=start_method,
        start=False,
    )
    rig.configure_plugin("phx", "cfg", level=3)
    rig.start()
    return rig


def test_dead_plugin_is_restarted_fresh_before_its_next_hook(
    make_rigger, tmp_path, start_method
):
    rig = phoenix_rig(make_rigger, tmp_path, start_method)
    first_pid = rig.plugin_pids()["phx"]

    rig.fire_hook("go", die=True)
    rig.fire_hook("go")

    new_pid = rig.global_data["phoenix"]["pid"]
    assert new_pid != first_pid
    assert read_lines(tmp_path / "init.txt") == [str(first_pid), str(new_pid)]
    assert read_lines(tmp_path / "configure.txt") == [str(first_pid), str(new_pid)]
    assert rig.global_data["phoenix"]["args"] == [["cfg"], {"level": 3}]


def test_restarted_plugin_is_configured_again(make_rigger, tmp_path, start_method):
    rig = phoenix_rig(make_rigger, tmp_path, start_method)
    rig.fire_hook("go", die=True)
    rig.fire_hook("guarded")
    assert rig.global_data["guarded_ran"] is True


def test_restart_is_logged_with_the_ident(make_rigger, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="rigger_sandbox")
    rig = phoenix_rig(make_rigger, tmp_path, "forkserver")
    rig.fire_hook("go", die=True)
    rig.fire_hook("go")
    assert any(
        "restart" in record.getMessage().lower() and "phx" in record.getMessage()
        for record in caplog.records
        if record.name.startswith("rigger_sandbox")
    )
    assert rig.stats()["phx"]["restarts"] == 1
