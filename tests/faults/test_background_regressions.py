"""Regressions found by the second review: the background paths under stress."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from rigger_sandbox import NestedEventError, PluginCrashed, ProtocolError, Rigger

from .conftest import assert_all_gone, wait_until
from .review2_plugins import AnswersTwice, SlowBackground, Ticker, TwoReplies

REPO = Path(__file__).resolve().parents[2]


class Recording(Rigger):
    def __init__(self, plugin: type, **top: object) -> None:
        super().__init__(
            config={"squash_exceptions": True, **top, "plugins": {"p": {"plugin": "p"}}}
        )
        self.register_plugin(plugin, "p")
        self.failures: list = []

    def handle_failure(self, error: Exception) -> None:
        self.failures.append(error)


@pytest.mark.timeout(60)
def test_replies_waiting_behind_each_other_when_the_process_exits_are_all_taken():
    rig = Recording(TwoReplies)

    def hold_until_the_plugin_exited() -> None:
        # Holds the event lock: nobody reads until both replies wait in the pipe.
        pid = rig.plugin_pids()["p"]
        wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), 20, "exit")

    rig.register_hook_callback("small", "post", hold_until_the_plugin_exited)
    with rig:
        rig.fire_hook("big")
        rig.fire_hook("small")
        wait_until(lambda: "small" in rig.global_data or rig.failures, 20, "reply")

        assert sorted(rig.global_data) == ["big", "small"]
        assert rig.failures == []


@pytest.mark.timeout(60)
def test_background_hook_firing_its_own_event_stops_at_max_nested_depth():
    rig = Recording(Ticker, max_nested_depth=3)

    with rig:
        rig.fire_hook("tick")

    assert rig.global_data["ticks"] == [0, 1, 2, 3]
    assert any(isinstance(e, NestedEventError) for e in rig.failures)


@pytest.mark.timeout(60)
def test_interrupted_event_reports_the_background_calls_of_the_killed_process(
    tmp_path,
):
    rig = Recording(SlowBackground)
    release = tmp_path / "release"

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        with rig:
            rig.fire_hook("slow_bg", release=str(release))
            signal.setitimer(signal.ITIMER_REAL, 0.3)
            with pytest.raises(KeyboardInterrupt):
                rig.fire_hook("fg")  # queued behind slow_bg, which never ends
            signal.setitimer(signal.ITIMER_REAL, 0)

            assert [e.hook for e in rig.failures] == ["slow_bg"]
            assert isinstance(rig.failures[0], PluginCrashed)
            rig.fire_hook("fg")
            assert rig.global_data == {"fg_done": True}
            assert rig.stats()["p"]["calls"] == 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.timeout(60)
def test_background_call_answered_twice_merges_neither_answer():
    rig = Recording(AnswersTwice)

    with rig:
        rig.fire_hook("bg", tag="bg_tag")
        wait_until(lambda: rig.failures, 20, "the refusal")

        assert "bg_tag" not in rig.global_data
        assert isinstance(rig.failures[0], ProtocolError)
        assert "twice" in str(rig.failures[0])


@pytest.mark.timeout(60)
def test_interpreter_exit_does_not_wait_for_a_hanging_event_a_background_hook_fired(
    tmp_path,
):
    pids_file = tmp_path / "pids.json"
    script = Path(__file__).with_name("bg_exit_script.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    done = subprocess.run(
        [sys.executable, str(script), str(pids_file)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr
    assert_all_gone(json.loads(pids_file.read_text()), "plugin processes", 10)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
