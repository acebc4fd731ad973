"""Point 14: YAML or dict configuration; every error is a ConfigError at start."""

from __future__ import annotations

import re

import pytest

from rigger_sandbox import ConfigError, Rigger

from .conftest import descendants
from .sample_plugins import Echo

ECHO = {"e": {"plugin": "tests.sample_plugins:Echo"}}


def start_error(rig):
    with pytest.raises(ConfigError) as caught:
        rig.start()
    return str(caught.value)


def test_yaml_file_configuration_is_read_at_start(write_config, make_rigger):
    path = write_config({"threaded": True, "plugins": {"x": {"plugin": "echo"}}})
    rig = Rigger(str(path))
    rig.register_plugin(Echo, "echo")
    with rig:
        assert rig.config["threaded"] is True
        rig.fire_hook("ping")
        assert "x" in rig.global_data["pinged"]


def test_construction_never_reads_the_file(tmp_path):
    Rigger(str(tmp_path / "does-not-exist.yaml"))


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "does-not-exist.yaml"
    assert str(path) in start_error(Rigger(str(path)))


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "a-directory.yaml"
    path.mkdir()
    assert str(path) in start_error(Rigger(str(path)))


def test_invalid_yaml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("threaded: true\nplugins: [unclosed\n")
    message = start_error(Rigger(str(path)))
    assert str(path) in message
    assert re.search(r"line \d", message)


def test_yaml_that_is_not_a_mapping_is_refused(write_config):
    path = write_config(["just", "a", "list"])
    message = start_error(Rigger(str(path)))
    assert str(path) in message
    assert re.search(r"mapping|dict", message, re.I)


@pytest.mark.parametrize(
    "settings, key, expected",
    [
        ({"threaded": "yes please"}, "threaded", r"bool|true|false"),
        ({"squash_exceptions": 3}, "squash_exceptions", r"bool|true|false"),
        ({"start_method": "thread"}, "start_method", r"fork.*forkserver.*spawn"),
        ({"timeout": "soon"}, "timeout", r"number|seconds"),
        ({"max_nested_depth": -1}, "max_nested_depth", r"positive|>|at least"),
        ({"plugins": ["e"]}, "plugins", r"mapping|dict"),
        ({"plugins": {"e": {"plugin": 5}}}, "plugin", r"str|name"),
        (
            {
                "plugins": {
                    "e": {"plugin": "tests.sample_plugins:Echo", "enabled": "no"}
                }
            },
            "enabled",
            r"bool|true|false",
        ),
        (
            {
                "plugins": {
                    "e": {"plugin": "tests.sample_plugins:Echo", "background": 1}
                }
            },
            "background",
            r"bool|true|false",
        ),
        ({"plugins": {"e": {"enabled": True}}}, "plugin", r"required|missing"),
        ({"plugins": {"e": "echo"}}, "e", r"mapping|dict"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_wrong_value_names_the_key_and_what_was_expected(
    write_config, settings, key, expected
):
    path = write_config({"plugins": ECHO, **settings})
    message = start_error(Rigger(str(path)))
    assert str(path) in message
    assert key in message
    assert re.search(expected, message, re.I | re.S), message


def test_dict_configuration_error_names_the_key(make_rigger):
    rig = make_rigger(ECHO, start=False, threaded="maybe")
    message = start_error(rig)
    assert "threaded" in message and "maybe" in message


def test_unknown_top_level_key_is_named(write_config):
    path = write_config({"threadded": True, "plugins": ECHO})
    message = start_error(Rigger(str(path)))
    assert str(path) in message and "threadded" in message
    assert re.search(r"\bthreaded\b", message), "should list the known keys"


def test_plugin_neither_registered_nor_importable_is_named(write_config):
    path = write_config({"plugins": {"inst": {"plugin": "no_such_plugin"}}})
    message = start_error(Rigger(str(path)))
    assert "inst" in message and "no_such_plugin" in message
    assert "registered" in message and "module:Class" in message


def test_plugin_module_that_does_not_exist_is_named(make_rigger):
    rig = make_rigger({"i": {"plugin": "tests.no_such_module:Thing"}}, start=False)
    assert "tests.no_such_module" in start_error(rig)


def test_plugin_file_that_does_not_exist_is_named(make_rigger, tmp_path):
    missing = tmp_path / "nowhere.py"
    rig = make_rigger({"i": {"plugin": f"{missing}:Thing"}}, start=False)
    assert str(missing) in start_error(rig)


def test_plugin_class_missing_from_its_module_is_named(make_rigger):
    rig = make_rigger(
        {"i": {"plugin": "tests.sample_plugins:NoSuchClass"}}, start=False
    )
    assert "NoSuchClass" in start_error(rig)


def test_config_error_leaves_no_plugin_process_running(make_rigger):
    rig = make_rigger(
        {"ok": {"plugin": "echo"}, "bad": {"plugin": "nope"}},
        register={"echo": Echo},
        start=False,
    )
    start_error(rig)
    assert descendants() == []
