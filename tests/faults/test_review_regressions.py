"""Regression tests for the defects a review found (each fixed in the engine).

Each test provokes one defect with a real plugin process: a reply pipe flooded
with frames, updates that contain themselves, timeouts beyond what ``poll``
takes, an interrupt (a raising ``handle_failure``, a real SIGINT) with a call
in flight, interpreter exit during an event, a restart that fails, a death
with calls queued behind it, a refused value sent again and again, an event
fired by a background hook, a timeout of a plugin with children, and a
request the plugin process cannot decode.  One more, a second reply to an
answered call, is marked as an expected failure until the engine reports it.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

import psutil
import pytest

from rigger_sandbox import (
    HookError,
    HookTimeout,
    PluginCrashed,
    ProtocolError,
    RiggerStateError,
    UnsafeValueError,
)

from .conftest import FAULTY, GOOD, assert_all_gone, wait_until
from .containment import check_contained, fire
from .fault_plugins import UNASKED_CALL_ID, read_pids

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])
HOSTILE_UPDATES = pytest.mark.parametrize(
    ("fault", "arg"),
    [("cyclic_update", None), ("deep_update", 500), ("deep_update", 5000)],
    ids=["contains-itself", "500-deep", "5000-deep"],
)

# A bound that proves "not hung", far above what a healthy run takes.
HUNG_MARGIN_S = 5.0
# How long a background reply may take to be collected on a loaded machine.
COLLECT_WAIT_S = 30.0
MIB = 1 << 20


def collector_threads() -> set[threading.Thread]:
    return {
        thread
        for thread in threading.enumerate()
        if thread.name == "rigger-background" and thread.is_alive()
    }


def record_post_times(rig, times: dict[int, float]) -> None:
    """Note when each ``work`` event reaches its post-callbacks, by ``seq``."""

    def note(seq: int) -> None:
        times[seq] = time.monotonic()

    rig.register_hook_callback("work", "post", note, name="note-time")


class PeakRss:
    """Samples this process's resident memory in a thread; keeps the peak."""

    def __init__(self, every_s: float = 0.01) -> None:
        self._every_s = every_s
        self._me = psutil.Process()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss")
        self.baseline = self.peak = 0

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._me.memory_info().rss
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._me.memory_info().rss)

    def _sample(self) -> None:
        while not self._done.wait(self._every_s):
            self.peak = max(self.peak, self._me.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


# -- a reply pipe flooded with frames -----------------------------------------

# How long and how much the plugin floods if nobody ends it: long past its
# timeout, and enough for a parent that buffers it to grow by hundreds of MiB.
FLOOD = {"seconds": 30.0, "megabytes": 64}


@pytest.mark.timeout(120)
def test_reply_frames_written_without_end_fail_the_call_at_once_in_bounded_memory(
    rig_factory,
):
    timeout = 1.0
    rig = rig_factory(squash_exceptions=True, faulty={"timeout": timeout})
    fired_at: list[float] = []
    finished_at: dict[int, float] = {}
    record_post_times(rig, finished_at)

    with PeakRss() as rss:
        outcome = check_contained(
            rig,
            fault="flood_frames",
            arg=FLOOD,
            expected=ProtocolError,
            squash=True,
            restarted=True,
            during=lambda: fired_at.append(time.monotonic()),
        )

    assert finished_at[2] - fired_at[0] < timeout + HUNG_MARGIN_S
    assert rss.growth < 50 * MIB, f"parent RSS grew by {rss.growth / MIB:.0f} MiB"
    assert outcome.error.kind == "protocol"
    assert str(UNASKED_CALL_ID) in str(outcome.error)


@pytest.mark.timeout(60)
def test_second_reply_to_one_call_is_reported_as_a_protocol_error(rig_factory):
    rig = rig_factory(squash_exceptions=True)
    fire(rig, 1)
    old_pid = rig.plugin_pids()[FAULTY]

    fire(rig, 2, fault="reply_twice", arg=2)
    fire(rig, 3)

    assert rig.plugin_pids()[FAULTY] != old_pid  # the duplicate ended it
    assert [type(e) for e in rig.failures] == [ProtocolError]
    assert rig.stats()[FAULTY]["failures"]["protocol"] == 1


# -- updates that contain themselves or nest too deep -------------------------


@pytest.mark.timeout(60)
@HOSTILE_UPDATES
@SQUASH
def test_updates_that_contain_themselves_or_nest_deep_are_refused_whole(
    rig_factory, fault, arg, squash
):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig, fault=fault, arg=arg, expected=HookError, squash=squash, restarted=False
    )

    assert "nest" in str(outcome.error)
    assert outcome.error.kind == "exception"


@pytest.mark.timeout(60)
@HOSTILE_UPDATES
def test_hostile_background_update_is_refused_and_the_collector_thread_lives_on(
    rig_factory, fault, arg
):
    rig = rig_factory(squash_exceptions=True, faulty={"plugin": "background"})
    threads_before = collector_threads()

    rig.fire_hook("work_bg", seq=1, fault=fault, arg=arg)
    wait_until(lambda: rig.failures, COLLECT_WAIT_S, "the background failure reported")

    [error] = rig.failures
    assert isinstance(error, HookError)
    assert error.ident == FAULTY and error.hook == "work_bg"
    assert "nest" in str(error)
    assert len(collector_threads() - threads_before) == 1

    # Only the collector thread can merge this: no event runs meanwhile.
    rig.fire_hook("work_bg", seq=2)
    wait_until(
        lambda: rig.global_data.get("bg_seen") == {FAULTY: [2]},
        COLLECT_WAIT_S,
        "a later background update merged by the collector",
    )
    assert "big" not in rig.global_data
    assert len(rig.failures) == 1


# -- timeouts beyond what poll takes, and malformed ones ----------------------

THIRTY_DAYS_S = 30 * 86400


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("where", "timeout"),
    [
        ("hook", THIRTY_DAYS_S),
        ("hook", math.inf),
        ("top", 10**9),
        ("top", math.inf),
    ],
    ids=["hook-30-days", "hook-inf", "top-1e9", "top-inf"],
)
@pytest.mark.parametrize("threaded", [False, True], ids=["sequential", "threaded"])
def test_timeouts_longer_than_poll_can_wait_let_events_run(
    rig_factory, where, timeout, threaded
):
    if where == "hook":
        rig = rig_factory(
            threaded=threaded, faulty={"plugin": "slow_hook", "hook_timeout": timeout}
        )
    else:
        rig = rig_factory(threaded=threaded, timeout=timeout)

    for seq in (1, 2):
        result = fire(rig, seq)
        assert [result[f"done_{ident}"] for ident in (*GOOD, FAULTY)] == [seq] * 3

    assert rig.failures == []
    assert sum(rig.stats()[FAULTY]["failures"].values()) == 0


@pytest.mark.timeout(60)
def test_background_hook_with_a_thirty_day_timeout_is_collected(rig_factory):
    rig = rig_factory(
        squash_exceptions=True,
        faulty={"plugin": "background", "bg_timeout": THIRTY_DAYS_S},
    )

    rig.fire_hook("work_bg", seq=1)

    wait_until(
        lambda: rig.global_data.get("bg_seen") == {FAULTY: [1]},
        COLLECT_WAIT_S,
        "the background update merged by the collector",
    )
    assert rig.failures == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "bad_timeout", ["soon", -1, True, math.nan], ids=["str", "negative", "bool", "nan"]
)
def test_malformed_timeout_in_a_plugins_hook_table_fails_start_naming_the_hook(
    rig_factory, bad_timeout
):
    rig = rig_factory(
        start=False,
        faulty={"plugin": "bad_hook_table", "bad_timeout": bad_timeout},
    )

    with pytest.raises(PluginCrashed) as caught:
        rig.start()

    assert caught.value.ident == FAULTY
    assert "'work'" in str(caught.value)
    with pytest.raises(RiggerStateError):
        rig.fire_hook("work", seq=1)


# -- an exception escaping an event with a call in flight ---------------------


@pytest.mark.timeout(90)
def test_interrupt_with_a_call_in_flight_leaves_no_late_reply_for_the_next_event(
    rig_factory, tmp_path
):
    # A timeout so that an unfixed engine fails the next event rather than
    # hanging in it (the hanging hook would still hold the plugin).
    rig = rig_factory(
        squash_exceptions=True,
        threaded=True,
        timeout=15,
        plugins={"bg": {"plugin": "background"}},
    )

    def interrupt_at_the_background_failure(error: HookError) -> None:
        rig.failures.append(error)
        if error.hook == "work_bg":
            raise KeyboardInterrupt("Ctrl-C while handling a failure")

    rig.handle_failure = interrupt_at_the_background_failure
    in_hook = tmp_path / "in-hook"
    assert fire(rig, 1)["done_bg"] == 1
    old_pid = rig.plugin_pids()[FAULTY]

    # 'bg' fails its background hook once 'faulty' is inside its hook, so the
    # failure reaches handle_failure while the event waits for 'faulty'.
    rig.fire_hook(
        "work_bg",
        seq=1,
        fault="when_file_exists",
        arg={"file": str(in_hook), "then": "raise_exception", "arg": "in bg"},
    )
    with pytest.raises(KeyboardInterrupt):
        fire(rig, 2, fault="hang", arg=str(in_hook))
    assert int(in_hook.read_text()) == old_pid

    result = fire(rig, 3)
    assert [result[f"done_{i}"] for i in (*GOOD, FAULTY, "bg")] == [3] * 4
    assert rig.global_data["seen"][FAULTY] == [1, 3]
    assert [(type(e), e.hook) for e in rig.failures] == [(HookError, "work_bg")]
    assert rig.plugin_pids()[FAULTY] != old_pid
    assert_all_gone([old_pid], "the interrupted plugin's old process", 5.0)


@pytest.mark.timeout(90)
def test_ctrl_c_while_an_event_waits_for_a_hook_leaves_no_late_reply(
    rig_factory, tmp_path
):
    rig = rig_factory(
        squash_exceptions=True, faulty={"plugin": "slow_hook", "hook_timeout": 30}
    )
    in_hook = tmp_path / "in-hook"
    fire(rig, 1)
    old_pid = rig.plugin_pids()[FAULTY]

    def press_ctrl_c_once_the_hook_runs() -> None:
        deadline = time.monotonic() + 30
        while not in_hook.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_once_the_hook_runs)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fire(rig, 2, fault="wait_for_release", arg=str(in_hook))
    finally:
        presser.join(60)
    assert int(in_hook.read_text()) == old_pid
    # Let the interrupted hook reply now, should its process still run.
    Path(f"{in_hook}.release").write_text(f"{os.getpid()}\n")

    result = fire(rig, 3)
    assert [result[f"done_{ident}"] for ident in (*GOOD, FAULTY)] == [3] * 3
    assert rig.global_data["seen"][FAULTY] == [1, 3]
    assert rig.failures == []
    assert rig.plugin_pids()[FAULTY] != old_pid


# -- interpreter exit while a daemon thread is inside fire_hook ---------------

EXIT_SCRIPT = Path(__file__).with_name("exit_script.py")
EXIT_BOUND_S = 15.0
SCRIPT_START_S = 60.0


@pytest.mark.timeout(120)
def test_interpreter_exit_ends_plugins_while_a_daemon_thread_is_in_an_event(
    tmp_path,
):
    output = tmp_path / "script-output"
    with open(output, "wb") as sink:
        script = subprocess.Popen(
            [sys.executable, str(EXIT_SCRIPT), str(tmp_path), "forkserver"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: (tmp_path / "exiting").exists() or script.poll() is not None,
            SCRIPT_START_S,
            "the script's main thread reached its end",
        )
        try:
            code = script.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the script did not exit within {EXIT_BOUND_S}s")
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()

    assert code == 0, output.read_text()
    plugins = list(json.loads((tmp_path / "pids.json").read_text()).values())
    assert len(plugins) == 2 and all(isinstance(pid, int) for pid in plugins)
    assert int((tmp_path / "in-hook").read_text()) in plugins
    assert_all_gone(plugins, "plugin processes after interpreter exit", 5.0)


# -- restarts that fail, deaths with calls queued, refused values -------------


def crash(rig, seq: int) -> None:
    rig.fire_hook("work", seq=seq, fault="os_exit", arg=5)


@pytest.mark.timeout(60)
def test_plugin_whose_restart_fails_is_restarted_again_once_it_can_start(
    rig_factory, tmp_path
):
    marker = tmp_path / "refuse-to-start"
    rig = rig_factory(
        squash_exceptions=True,
        faulty={"plugin": "fails_to_start", "marker": str(marker), "max_restarts": 5},
    )
    assert fire(rig, 1)["done_faulty"] == 1

    marker.write_text("")
    crash(rig, 2)
    assert rig.stats()[FAULTY]["state"] == "restarting"
    result = fire(rig, 3)  # the restart fails in plugin_initialize

    assert "done_faulty" not in result and result["done_after"] == 3
    assert rig.stats()[FAULTY]["state"] == "restarting"
    assert [(type(e), e.hook) for e in rig.failures] == [
        (PluginCrashed, "work"),
        (PluginCrashed, "plugin_initialize"),
    ]
    assert "deliberate start failure" in str(rig.failures[1])

    marker.unlink()
    result = fire(rig, 4)
    assert result["done_faulty"] == 4
    assert rig.stats()[FAULTY]["state"] == "running"
    assert rig.stats()[FAULTY]["restarts"] == 2
    assert len(rig.failures) == 2


@pytest.mark.timeout(60)
def test_plugin_whose_restarts_keep_failing_is_disabled_after_max_restarts(
    rig_factory, tmp_path
):
    marker = tmp_path / "refuse-to-start"
    rig = rig_factory(
        squash_exceptions=True,
        faulty={"plugin": "fails_to_start", "marker": str(marker), "max_restarts": 2},
    )
    marker.write_text("")
    states = []

    crash(rig, 1)
    states.append(rig.stats()[FAULTY]["state"])
    for seq in (2, 3, 4):
        result = fire(rig, seq)
        assert "done_faulty" not in result and result["done_after"] == seq
        states.append(rig.stats()[FAULTY]["state"])

    # The crash counts once, and so does each failed restart.
    assert states == ["restarting", "restarting", "disabled", "disabled"]
    assert [(type(e), e.hook) for e in rig.failures] == [
        (PluginCrashed, "work"),
        (PluginCrashed, "plugin_initialize"),
        (PluginCrashed, "plugin_initialize"),
    ]
    assert rig.stats()[FAULTY]["restarts"] == 2
    assert rig.plugin_pids()[FAULTY] is None


@pytest.mark.timeout(60)
def test_one_death_with_background_calls_queued_counts_once_against_max_restarts(
    rig_factory, tmp_path
):
    rig = rig_factory(
        squash_exceptions=True, faulty={"plugin": "background", "max_restarts": 1}
    )
    release = tmp_path / "release"

    # The first background hook dies only once two more are queued behind it.
    rig.fire_hook(
        "work_bg",
        seq=1,
        fault="when_file_exists",
        arg={"file": str(release), "then": "os_exit", "arg": 5},
    )
    rig.fire_hook("work_bg", seq=2)
    rig.fire_hook("work_bg", seq=3)
    release.write_text(f"{os.getpid()}\n")
    wait_until(
        lambda: len(rig.failures) == 3,
        COLLECT_WAIT_S,
        "all three background calls failed",
    )

    assert all(isinstance(e, PluginCrashed) for e in rig.failures)
    assert {e.hook for e in rig.failures} == {"work_bg"}
    assert rig.stats()[FAULTY]["state"] == "restarting"
    assert fire(rig, 4)["done_faulty"] == 4
    assert rig.stats()[FAULTY]["state"] == "running"
    assert rig.stats()[FAULTY]["restarts"] == 1

    # A second death is one more than max_restarts allows.
    rig.fire_hook("work_bg", seq=5, fault="os_exit", arg=5)
    wait_until(
        lambda: len(rig.failures) == 4, COLLECT_WAIT_S, "the second death reported"
    )
    assert rig.stats()[FAULTY]["state"] == "disabled"


@pytest.mark.timeout(60)
def test_refused_value_sent_by_every_call_disables_the_plugin_after_max_restarts(
    rig_factory,
):
    rig = rig_factory(squash_exceptions=True, faulty={"max_restarts": 2})
    states = []

    for seq in range(1, 7):
        result = fire(rig, seq, fault="posix_path", arg="/tmp")
        assert result["done_before"] == seq and result["done_after"] == seq
        assert "partial" not in result and "big" not in rig.global_data
        states.append(rig.stats()[FAULTY]["state"])

    assert [type(e) for e in rig.failures] == [UnsafeValueError] * 3
    assert all("PosixPath" in str(e) for e in rig.failures)
    assert states == ["restarting", "restarting"] + ["disabled"] * 4
    assert rig.stats()[FAULTY]["restarts"] == 2


# -- events fired by background hooks -----------------------------------------


@pytest.mark.timeout(60)
def test_event_fired_by_a_background_hook_has_run_when_shutdown_returns(
    rig_factory,
):
    rig = rig_factory(squash_exceptions=True, faulty={"plugin": "background"})

    rig.fire_hook("work_bg", seq=1, fault="nested_loop", arg=1)
    rig.shutdown()

    assert rig.global_data["bg_seen"] == {FAULTY: [1]}
    assert rig.global_data["pings"] == {"before": [0], "after": [0]}
    assert rig.failures == []


@pytest.mark.timeout(60)
def test_event_fired_by_a_background_hook_runs_without_waiting_for_another_event(
    rig_factory,
):
    rig = rig_factory(squash_exceptions=True, faulty={"plugin": "background"})

    rig.fire_hook("work_bg", seq=1, fault="nested_loop", arg=1)

    wait_until(
        lambda: rig.global_data.get("pings") == {"before": [0], "after": [0]},
        COLLECT_WAIT_S,
        "the nested event ran from the background collector",
    )
    assert rig.failures == []


# -- a timeout of a plugin that started processes -----------------------------


@pytest.mark.timeout(60)
def test_timeout_of_a_hook_with_a_child_process_is_reported_without_delay(
    rig_factory, tmp_path
):
    timeout = 2.0
    rig = rig_factory(squash_exceptions=False, faulty={"timeout": timeout})
    fire(rig, 1)
    spawn = {"out": str(tmp_path), "kind": "shell", "then": "hang"}

    started = time.monotonic()
    with pytest.raises(HookTimeout):
        fire(rig, 2, fault="spawn", arg=spawn)
    elapsed = time.monotonic() - started

    assert (tmp_path / "ready").exists(), "the hook timed out before it blocked"
    assert elapsed < timeout + 1.5, f"reported after {elapsed:.2f}s"
    assert_all_gone(read_pids(tmp_path / "pids"), "the hook's child processes", 5.0)


# -- a request the plugin process cannot decode -------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_request_the_plugin_process_cannot_decode_fails_only_that_call(
    rig_factory, tmp_path, monkeypatch, start_method
):
    rig = rig_factory(squash_exceptions=False, start_method=start_method)
    name = f"parent_only_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text("class ParentOnly:\n    pass\n")
    # Only now, with the plugin processes running, can the parent import it.
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        parent_only = importlib.import_module(name).ParentOnly()
        outcome = check_contained(
            rig,
            fault="echo_type",
            arg=parent_only,
            expected=HookError,
            squash=False,
            restarted=False,
        )
    finally:
        sys.modules.pop(name, None)

    assert "plugin process cannot decode the request" in str(outcome.error)
    assert outcome.error.kind == "exception"
