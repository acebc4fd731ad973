"""The rigger-sandbox command line, run as a real subprocess, and the bundled plugins.

Every run happens in a temporary working directory, so the tests also prove
that the demo and relative plugin paths do not depend on where the command is
started from. Each run carries a marker in its environment; after each test no
process carrying it may remain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "plugins"
DEMO_EVENTS = ROOT / "examples" / "demo_events.jsonl"
MARKER = "RIGGER_SANDBOX_CLI_TEST"
RUN_TIMEOUT = 50
TESTS = [f"test_{n}" for n in range(1, 9)]


def _env(marker: str) -> dict[str, str]:
    env = {**os.environ, MARKER: marker}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    return env


def _run_cli(
    cwd: Path, marker: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rigger_sandbox", *args],
        cwd=cwd,
        env=_env(marker),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


@pytest.fixture
def marker() -> Iterator[str]:
    """A mark for the environment of the runs of one test; none may outlive it."""
    marker = uuid.uuid4().hex
    yield marker
    assert _marked_processes(marker, deadline=5.0) == []


@pytest.fixture
def cli(tmp_path: Path, marker: str):
    """Run ``python -m rigger_sandbox`` in ``tmp_path`` to its end."""

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return _run_cli(tmp_path, marker, *args, stdin=stdin)

    return run


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess:
    """One run of the bundled demo, shared by the tests that only read it."""
    marker = uuid.uuid4().hex
    result = _run_cli(tmp_path_factory.mktemp("demo"), marker, "run")
    assert _marked_processes(marker, deadline=5.0) == []
    return result


def _marked_processes(marker: str, deadline: float) -> list[int]:
    """Pids of live processes whose environment carries ``marker``."""
    end = time.monotonic() + deadline
    while True:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if proc.environ().get(MARKER) == marker:
                    found.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        if not found or time.monotonic() > end:
            return found
        time.sleep(0.1)


def _config(folder: Path, text: str) -> Path:
    """Write a YAML config into ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rigger.yaml"
    path.write_text(text)
    return path


def _events(path: Path, *events: dict) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def _row(stdout: str, ident: str) -> list[str]:
    """The summary table's row for ``ident``, split into cells."""
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == ident:
            return cells
    raise AssertionError(f"no summary row for {ident!r} in:\n{stdout}")


def _cue_config(folder: Path, how: str, extra: str = "") -> Path:
    return _config(
        folder,
        f"""
squash_exceptions: true
plugins:
  cue:
    plugin: {PLUGINS}/fail_on_cue.py:FailOnCue
    fail_on: ping
    how: {how}
{extra}
""",
    )


# The bundled demo


def test_demo_exits_zero_with_a_summary_row_per_instance(demo):
    assert demo.returncode == 0, demo.stderr
    for ident in ("artifacts", "timer", "crashy", "grumpy"):
        _row(demo.stdout, ident)


def test_demo_summary_shows_crashes_and_restarts_of_the_crashing_plugin(demo):
    row = _row(demo.stdout, "crashy")
    assert "crash=2" in row
    assert row[-4] == "2"  # restarts, before p50, p99 and max


def test_demo_summary_shows_every_artifact_call_succeeded(demo):
    row = _row(demo.stdout, "artifacts")
    assert row[1] == "running"
    assert row[3] == "16"  # calls
    assert row[4] == "0"  # failures
    assert row[5] == "0"  # restarts


def test_demo_log_says_the_plugin_crashed_and_was_restarted(demo):
    crash_lines = [
        line
        for line in demo.stderr.splitlines()
        if "crashy" in line and "SIGSEGV" in line
    ]
    restart_lines = [
        line
        for line in demo.stderr.splitlines()
        if "crashy" in line and "restart" in line.lower()
    ]
    assert crash_lines, demo.stderr
    assert restart_lines, demo.stderr


def test_demo_prints_the_complete_finished_list(demo):
    line = next(
        line
        for line in demo.stdout.splitlines()
        if line.strip().startswith("finished:")
    )
    assert json.loads(line.split(":", 1)[1]) == TESTS


@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn"])
def test_demo_json_counts_are_exact_under_start_method(cli, start_method):
    result = cli("run", "--json", "--start-method", start_method)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    stats = document["stats"]
    assert list(stats) == ["artifacts", "timer", "crashy", "grumpy"]
    assert stats["artifacts"]["calls"] == 16
    assert sum(stats["artifacts"]["failures"].values()) == 0
    assert stats["crashy"]["failures"]["crash"] == 2
    assert stats["crashy"]["restarts"] == 2
    assert stats["grumpy"]["failures"]["exception"] == 2
    assert stats["grumpy"]["restarts"] == 0
    assert document["events"] == {"total": 16, "completed": 16}
    assert document["global"]["finished"] == TESTS
    assert sorted(document["global"]["durations"]) == TESTS


def test_demo_writes_artifact_logs_where_set_puts_test_location(cli, tmp_path):
    artifacts = tmp_path / "artifacts"

    result = cli("run", "--set", f"test_location={artifacts}")

    assert result.returncode == 0, result.stderr
    log = artifacts / "test_3-artifacts.log"
    assert log.read_text() == "test_3\nfailed\n"
    assert len(list(artifacts.glob("*-artifacts.log"))) == 8


def test_demo_config_runs_with_given_events_file(cli, tmp_path):
    events = _events(
        tmp_path / "two.jsonl",
        {"hook": "start_test", "kwargs": {"test_name": "only"}},
        {"hook": "finish_test", "kwargs": {"test_name": "only", "test_result": "ok"}},
    )

    result = cli("run", "--json", "--events", str(events))

    assert json.loads(result.stdout)["global"]["finished"] == ["only"]


# Events files


def test_invalid_json_line_exits_2_naming_file_and_line(cli, tmp_path):
    events = tmp_path / "bad.jsonl"
    events.write_text('{"hook": "start_test"}\n{"hook": "finish_test",\n')

    result = cli("run", "--events", str(events))

    assert result.returncode == 2
    assert f"{events}:2: invalid JSON" in result.stderr
    assert "expected one JSON object per line" in result.stderr
    assert "Traceback" not in result.stderr


def test_line_without_hook_exits_2_saying_hook_is_missing(cli, tmp_path):
    events = _events(tmp_path / "bad.jsonl", {"kwargs": {"test_name": "t"}})

    result = cli("run", "--events", str(events))

    assert result.returncode == 2
    assert f"{events}:1: missing 'hook'" in result.stderr


def test_line_that_is_not_an_object_exits_2(cli, tmp_path):
    events = tmp_path / "bad.jsonl"
    events.write_text('\n["start_test", {}]\n')

    result = cli("run", "--events", str(events))

    assert result.returncode == 2
    assert f"{events}:2: expected one JSON object per line" in result.stderr
    assert "got an array" in result.stderr


def test_kwargs_that_are_not_an_object_exit_2(cli, tmp_path):
    events = _events(tmp_path / "bad.jsonl", {"hook": "start_test", "kwargs": [1]})

    result = cli("run", "--events", str(events))

    assert result.returncode == 2
    assert f"{events}:1: 'kwargs' must be an object" in result.stderr


def test_kwargs_naming_a_fire_hook_parameter_exit_2(cli, tmp_path):
    events = _events(
        tmp_path / "bad.jsonl", {"hook": "ping", "kwargs": {"grab_result": True}}
    )

    result = cli("run", "--events", str(events))

    assert result.returncode == 2
    assert f"{events}:1: 'kwargs' may not contain ['grab_result']" in result.stderr


def test_unknown_key_in_event_exits_2(cli, tmp_path):
    events = _events(tmp_path / "bad.jsonl", {"hook": "start_test", "args": []})

    result = cli("run", "--events", str(events))

    assert result.returncode == 2
    assert "unknown key(s) ['args']" in result.stderr


def test_bad_line_stops_the_run_before_any_event_is_fired(cli, tmp_path):
    artifacts = tmp_path / "artifacts"
    events = tmp_path / "bad.jsonl"
    events.write_text('{"hook": "start_test", "kwargs": {"test_name": "t"}}\nnope\n')

    result = cli("run", "--events", str(events), "--set", f"test_location={artifacts}")

    assert result.returncode == 2
    assert not artifacts.exists()


def test_missing_events_file_exits_2(cli, tmp_path):
    result = cli("run", "--events", str(tmp_path / "absent.jsonl"))

    assert result.returncode == 2
    assert "cannot read events file" in result.stderr
    assert "absent.jsonl" in result.stderr


def test_events_are_read_from_standard_input(cli):
    lines = [
        {"hook": "start_test", "kwargs": {"test_name": "piped"}},
        {"hook": "finish_test", "kwargs": {"test_name": "piped", "test_result": "ok"}},
    ]
    stdin = "".join(json.dumps(line) + "\n" for line in lines)

    result = cli("run", "--json", "--events", "-", stdin=stdin)

    assert json.loads(result.stdout)["global"]["finished"] == ["piped"]


# Configuration


def test_missing_config_exits_2_naming_it(cli, tmp_path):
    events = _events(tmp_path / "e.jsonl", {"hook": "ping"})

    result = cli("run", "absent.yaml", "--events", str(events))

    assert result.returncode == 2
    assert "config file 'absent.yaml' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_without_events_option_exits_2(cli, tmp_path):
    config = _cue_config(tmp_path, "raise")

    result = cli("run", str(config))

    assert result.returncode == 2
    assert "--events" in result.stderr


def test_invalid_config_value_exits_2_naming_the_key(cli, tmp_path):
    config = _config(tmp_path, "threaded: maybe\nplugins: {}\n")
    events = _events(tmp_path / "e.jsonl", {"hook": "ping"})

    result = cli("run", str(config), "--events", str(events))

    assert result.returncode == 2
    assert "threaded" in result.stderr
    assert "Traceback" not in result.stderr


def test_relative_plugin_path_resolves_against_config_folder_with_overrides(
    cli, tmp_path
):
    folder = tmp_path / "conf" / "deep"
    relative = os.path.relpath(PLUGINS / "artifact_log.py", folder)
    config = _config(folder, f"plugins:\n  log:\n    plugin: {relative}:ArtifactLog\n")
    events = _events(
        tmp_path / "e.jsonl",
        {"hook": "start_test", "kwargs": {"test_name": "t", "test_location": "out"}},
        {
            "hook": "finish_test",
            "kwargs": {"test_name": "t", "test_location": "out", "test_result": "ok"},
        },
    )

    result = cli(
        "run", str(config), "--events", str(events), "--json", "--threaded", "--squash"
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["global"]["finished"] == ["t"]
    assert (tmp_path / "out" / "t-log.log").read_text() == "t\nok\n"


# Failures raised instead of squashed


def test_no_squash_stops_at_the_failing_event_with_exit_1(cli, tmp_path):
    config = _cue_config(tmp_path, "raise", "    every: 2\n")
    events = _events(
        tmp_path / "e.jsonl", {"hook": "ping"}, {"hook": "ping"}, {"hook": "ping"}
    )

    result = cli("run", str(config), "--events", str(events), "--no-squash")

    assert result.returncode == 1
    assert f"{events}:2: event 'ping' failed" in result.stderr
    assert "failing on cue (call 2)" in result.stderr
    assert "Completed 1 of 3 events" in result.stdout


def test_squash_option_overrides_config_and_completes_the_run(cli, tmp_path):
    config = _cue_config(tmp_path, "raise").read_text()
    config_path = _config(
        tmp_path, config.replace("squash_exceptions: true", "squash_exceptions: false")
    )
    events = _events(tmp_path / "e.jsonl", {"hook": "ping"}, {"hook": "ping"})

    result = cli("run", str(config_path), "--events", str(events), "--squash", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stats"]["cue"]["failures"]["exception"] == 2


# The fail_on_cue plugin, one way of failing each


@pytest.mark.parametrize(
    ("how", "extra", "kind"),
    [
        ("raise", "", "exception"),
        ("exit", "    exit_code: 7\n", "crash"),
        ("signal", "    signal: SIGTERM\n", "crash"),
        ("segfault", "", "crash"),
        ("hang", "    timeout: 1\n", "timeout"),
        ("hang", "    timeout: 1\n    ignore_sigterm: true\n", "timeout"),
    ],
    ids=["raise", "exit", "signal", "segfault", "hang", "hang-ignoring-sigterm"],
)
def test_fail_on_cue_fails_every_nth_call_the_configured_way(
    cli, tmp_path, how, extra, kind
):
    config = _cue_config(tmp_path, how, "    every: 2\n" + extra)
    events = _events(tmp_path / "e.jsonl", *[{"hook": "ping"}] * 4)

    result = cli("run", str(config), "--events", str(events), "--json")

    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)["stats"]["cue"]
    assert stats["calls"] == 4
    assert stats["failures"][kind] == 2
    assert sum(stats["failures"].values()) == 2


def test_fail_on_cue_rejects_an_unknown_way_of_failing(cli, tmp_path):
    config = _cue_config(tmp_path, "explode")
    events = _events(tmp_path / "e.jsonl", {"hook": "ping"})

    result = cli("run", str(config), "--events", str(events))

    assert result.returncode != 0
    assert "'how' must be one of raise, exit, signal, segfault, hang" in result.stderr


# Command-line options


def test_set_without_equals_sign_exits_2(cli):
    result = cli("run", "--set", "test_location")

    assert result.returncode == 2
    assert "--set expects KEY=VALUE" in result.stderr


def test_show_limits_the_printed_global_keys(cli):
    result = cli("run", "--show", "finished")

    assert "  finished:" in result.stdout
    assert "durations" not in result.stdout


def test_interrupt_stops_the_plugins_and_exits_130(tmp_path, marker):
    # threaded: the artifact log appears while the hanging hook is running.
    config = _config(
        tmp_path,
        f"""
threaded: true
plugins:
  log:
    plugin: {PLUGINS}/artifact_log.py:ArtifactLog
  stuck:
    plugin: {PLUGINS}/fail_on_cue.py:FailOnCue
    fail_on: start_test
    how: hang
""",
    )
    events = _events(
        tmp_path / "e.jsonl",
        {"hook": "start_test", "kwargs": {"test_name": "t", "test_location": "out"}},
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rigger_sandbox",
            "run",
            str(config),
            "--events",
            str(events),
        ],
        cwd=tmp_path,
        env=_env(marker),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (tmp_path / "out" / "t-log.log").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        proc.kill()

    assert proc.returncode == 130
    assert "interrupted, stopping the plugins" in stderr
    assert "Completed 0 of 1 events" in stdout


# The README's first example


def test_first_plugin_example_writes_its_log_and_returns_finished(tmp_path, marker):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "first_plugin.py")],
        cwd=tmp_path,
        env=_env(marker),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )

    assert result.returncode == 0, result.stderr
    assert "finished: ['my_test']" in result.stdout
    log = tmp_path / "var" / "test" / "my_test-test.log"
    assert log.read_text() == "my_test\npassed"
