"""Point 13: start, shutdown, context manager, start methods, no leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from rigger_sandbox import Rigger, RiggerStateError

from .conftest import descendants
from .sample_plugins import Echo, InitMarker


def marker_plugins(tmp_path, *idents):
    return {ident: {"plugin": "marker", "out": str(tmp_path)} for ident in idents}


def test_fire_hook_before_start_raises_state_error(make_rigger):
    rig = make_rigger({"e": {"plugin": "echo"}}, register={"echo": Echo}, start=False)
    with pytest.raises(RiggerStateError, match="start"):
        rig.fire_hook("ping")


def test_fire_hook_after_shutdown_raises_state_error(make_rigger):
    rig = make_rigger({"e": {"plugin": "echo"}}, register={"echo": Echo})
    rig.shutdown()
    with pytest.raises(RiggerStateError):
        rig.fire_hook("ping")


def test_start_returns_after_every_plugin_initialize_ran(
    make_rigger, tmp_path, start_method
):
    rig = make_rigger(
        marker_plugins(tmp_path, "a", "b"),
        register={"marker": InitMarker},
        start_method=start_method,
    )
    pids = rig.plugin_pids()
    assert (tmp_path / "init-a").read_text() == str(pids["a"])
    assert (tmp_path / "init-b").read_text() == str(pids["b"])


def test_one_live_process_per_enabled_instance(make_rigger, tmp_path, start_method):
    plugins = marker_plugins(tmp_path, "a", "b", "c")
    plugins["c"]["enabled"] = False
    rig = make_rigger(
        plugins, register={"marker": InitMarker}, start_method=start_method
    )
    pids = rig.plugin_pids()
    assert set(pids) == {"a", "b"}
    live = {proc.pid for proc in psutil.Process().children(recursive=True)}
    assert {pids["a"], pids["b"]} <= live


def test_shutdown_leaves_no_child_or_zombie(make_rigger, tmp_path, start_method):
    rig = make_rigger(
        marker_plugins(tmp_path, "a", "b"),
        register={"marker": InitMarker},
        start_method=start_method,
    )
    rig.fire_hook("ping")
    pids = set(rig.plugin_pids().values())
    rig.shutdown()
    # No waiting here: shutdown itself must have stopped and reaped them.
    left = [proc for proc in descendants() if proc.pid in pids]
    assert left == []
    assert not any(psutil.pid_exists(pid) for pid in pids)


def pipe_fds():
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(("pipe:", "socket:")):
            fds.add((int(name), target))
    return fds


def test_shutdown_leaves_no_pipe_behind(make_rigger, tmp_path, start_method):
    def run_once():
        rig = make_rigger(
            marker_plugins(tmp_path, "a"),
            register={"marker": InitMarker},
            start_method=start_method,
        )
        rig.fire_hook("ping")
        rig.shutdown()

    run_once()  # starts the forkserver and resource tracker, which stay
    before = pipe_fds()
    run_once()
    assert pipe_fds() - before == set()


def test_with_rigger_binds_the_rigger_and_stops_it(tmp_path, start_method):
    config = {
        "start_method": start_method,
        "plugins": {"e": {"plugin": "tests.sample_plugins:Echo"}},
    }
    with Rigger(config=config) as rig:
        assert isinstance(rig, Rigger)
        rig.fire_hook("ping")
        pid = rig.plugin_pids()["e"]
        assert psutil.pid_exists(pid)
    assert rig.global_data["pinged"] == {"e": pid}
    assert not psutil.pid_exists(pid)
    with pytest.raises(RiggerStateError):
        rig.fire_hook("ping")


def test_with_rig_stops_plugins_when_the_block_raises(tmp_path):
    rig = Rigger(config={"plugins": {"e": {"plugin": "tests.sample_plugins:Echo"}}})
    with pytest.raises(KeyError), rig:
        pid = rig.plugin_pids()["e"]
        raise KeyError("user error inside the block")
    assert not psutil.pid_exists(pid)


def test_shutdown_twice_is_harmless(make_rigger):
    rig = make_rigger({"e": {"plugin": "echo"}}, register={"echo": Echo})
    rig.shutdown()
    rig.shutdown()


def plugin_process_shape(pid):
    plugin = psutil.Process(pid)
    me = psutil.Process()
    return plugin.ppid() == me.pid, plugin.cmdline() == me.cmdline()


def test_default_start_method_does_not_fork_the_parent(make_rigger):
    rig = make_rigger({"e": {"plugin": "echo"}}, register={"echo": Echo})
    _, same_cmdline = plugin_process_shape(rig.plugin_pids()["e"])
    assert not same_cmdline


@pytest.mark.parametrize(
    "method, shape",
    [
        ("fork", (True, True)),  # a plain fork of this process
        ("spawn", (True, False)),  # a fresh interpreter, our child
        ("forkserver", (False, False)),  # forked by the forkserver
    ],
)
def test_start_method_setting_picks_how_plugins_start(make_rigger, method, shape):
    rig = make_rigger(
        {"e": {"plugin": "echo"}}, register={"echo": Echo}, start_method=method
    )
    assert plugin_process_shape(rig.plugin_pids()["e"]) == shape


EXIT_SCRIPT = """
import json
import sys

from rigger_sandbox import Rigger

if __name__ == "__main__":
    rig = Rigger(config={
        "start_method": sys.argv[1],
        "plugins": {
            "a": {"plugin": "tests.sample_plugins:Echo"},
            "b": {"plugin": "tests.sample_plugins:Echo"},
        },
    })
    rig.start()
    rig.fire_hook("ping")
    print(json.dumps(list(rig.plugin_pids().values())), flush=True)
    # No shutdown: interpreter exit must stop the plugin processes.
"""


def test_interpreter_exit_stops_plugin_processes(tmp_path, start_method):
    script = tmp_path / "exit_script.py"
    script.write_text(EXIT_SCRIPT)
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo_root}
    done = subprocess.run(
        [sys.executable, str(script), start_method],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=repo_root,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=10)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    for proc in alive:
        proc.kill()
    assert alive == []
