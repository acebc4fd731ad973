"""Untrusted plugin processes start with stdin closed, few descriptors, cwd and env."""

from __future__ import annotations

import os

import pytest

from .conftest import FAULTY, SESSION_MARK
from .containment import fire

# stdin, stdout, stderr, the request pipe and the reply pipe.
NEEDED_FDS = 5


@pytest.mark.timeout(60)
def test_plugin_stdin_is_at_end_of_file(rig_factory):
    rig = rig_factory()

    seen = fire(rig, 1, fault="inspect")

    assert seen["stdin"] == ""


@pytest.mark.timeout(60)
def test_plugin_inherits_only_the_descriptors_it_needs(
    rig_factory, tmp_path, start_method
):
    secret = tmp_path / "parent-secret.txt"
    with open(secret, "w") as handle:
        # Opened in the parent before the plugin starts: under fork the
        # plugin would inherit it unless the sandbox closes it.
        rig = rig_factory(start_method=start_method)
        seen = fire(rig, 1, fault="inspect")
        assert not handle.closed

    fds = seen["fds"]
    assert len(fds) <= NEEDED_FDS, fds
    assert str(secret) not in fds.values()
    assert all(target.startswith(("pipe:", "/dev/null")) for target in fds.values())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["instance", "top-level"])
def test_plugin_runs_in_the_configured_working_directory(rig_factory, tmp_path, where):
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    if where == "instance":
        rig = rig_factory(faulty={"cwd": str(workdir)})
    else:
        rig = rig_factory(cwd=str(workdir))

    seen = fire(rig, 1, fault="inspect")

    assert seen["cwd"] == str(workdir)
    assert os.getcwd() != str(workdir)


@pytest.mark.timeout(60)
def test_plugin_given_an_env_mapping_sees_that_environment_only(rig_factory):
    rig = rig_factory(faulty={"env": {"ONLY_THIS": "1", "PATH": "/usr/bin:/bin"}})

    seen = fire(rig, 1, fault="inspect")

    assert seen["env"].get("ONLY_THIS") == "1"
    assert SESSION_MARK not in seen["env"]
    assert "HOME" not in seen["env"] or "HOME" not in os.environ


@pytest.mark.timeout(60)
def test_plugin_with_env_inherit_sees_the_parent_environment(rig_factory):
    rig = rig_factory(faulty={"env": "inherit"})

    seen = fire(rig, 1, fault="inspect")

    assert seen["env"][SESSION_MARK] == os.environ[SESSION_MARK]
    assert seen[f"done_{FAULTY}"] == 1
