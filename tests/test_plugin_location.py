"""Point 2: where a plugin class may live, under every start method."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from rigger_sandbox import RiggerBasePlugin

from .sample_plugins import Echo, read_lines

REPO_ROOT = Path(__file__).resolve().parents[1]


class ModuleLevel(RiggerBasePlugin):
    """Defined at the top of a test module."""

    def plugin_initialize(self):
        self.register_plugin_hook("ping")

    def ping(self):
        return None, {"where": "test module", "pid": os.getpid()}


def test_class_from_importable_module_runs(make_rigger, start_method):
    rig = make_rigger(
        {"e": {"plugin": "echo"}}, register={"echo": Echo}, start_method=start_method
    )
    rig.fire_hook("ping")
    assert rig.global_data["pinged"]["e"] == rig.plugin_pids()["e"] != os.getpid()


def test_class_defined_in_test_module_runs(make_rigger, start_method):
    rig = make_rigger(
        {"m": {"plugin": "mod"}},
        register={"mod": ModuleLevel},
        start_method=start_method,
    )
    rig.fire_hook("ping")
    assert rig.global_data["where"] == "test module"
    assert rig.global_data["pid"] == rig.plugin_pids()["m"]


def test_class_defined_inside_function_is_shipped_by_value(make_rigger, start_method):
    secret = f"closure value {start_method}"

    class Local(RiggerBasePlugin):
        def plugin_initialize(self):
            self.register_plugin_hook("ping")

        def ping(self):
            return None, {"secret": secret, "pid": os.getpid()}

    rig = make_rigger(
        {"l": {"plugin": "local"}}, register={"local": Local}, start_method=start_method
    )
    rig.fire_hook("ping")
    assert rig.global_data["secret"] == secret
    assert rig.global_data["pid"] == rig.plugin_pids()["l"] != os.getpid()


MAIN_SCRIPT = """
import json
import os
import sys

from rigger_sandbox import Rigger, RiggerBasePlugin


class MainPlugin(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("ping")

    def ping(self):
        return None, {"pid": os.getpid()}


if __name__ == "__main__":
    config = {"start_method": sys.argv[1], "plugins": {"m": {"plugin": "main"}}}
    rig = Rigger(config=config)
    rig.register_plugin(MainPlugin, "main")
    with rig:
        result = rig.fire_hook("ping", grab_result=True)
    print(json.dumps({"parent": os.getpid(), "plugin": result["pid"]}))
"""


def test_class_defined_in_main_script_runs(tmp_path, start_method):
    script = tmp_path / "main_script.py"
    script.write_text(MAIN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), start_method],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert pids["plugin"] != pids["parent"]


def test_config_names_class_by_import_path(make_rigger, start_method):
    rig = make_rigger(
        {"e": {"plugin": "tests.sample_plugins:Echo"}}, start_method=start_method
    )
    rig.fire_hook("ping")
    assert rig.global_data["pinged"]["e"] == rig.plugin_pids()["e"]
    assert rig.global_data["module"] == "tests.sample_plugins"


FILE_PLUGIN = """
import os

from rigger_sandbox import RiggerBasePlugin

with open({imports!r}, "a") as record:
    record.write(str(os.getpid()) + "\\n")


class FromFile(RiggerBasePlugin):
    def plugin_initialize(self):
        self.register_plugin_hook("ping")

    def ping(self):
        return None, {{"from_file": os.getpid()}}
"""


def write_file_plugin(tmp_path: Path) -> Path:
    source = tmp_path / "plugins_dir" / "file_plugin.py"
    source.parent.mkdir()
    imports = tmp_path / "imports.txt"
    source.write_text(textwrap.dedent(FILE_PLUGIN.format(imports=str(imports))))
    return source


def test_config_names_class_by_file_path(make_rigger, tmp_path, start_method):
    source = write_file_plugin(tmp_path)
    rig = make_rigger(
        {"f": {"plugin": f"{source}:FromFile"}}, start_method=start_method
    )
    rig.fire_hook("ping")
    assert rig.global_data["from_file"] == rig.plugin_pids()["f"]


def test_class_named_by_file_is_imported_only_in_plugin_process(
    make_rigger, tmp_path, start_method
):
    source = write_file_plugin(tmp_path)
    rig = make_rigger(
        {"f": {"plugin": f"{source}:FromFile"}}, start_method=start_method
    )
    rig.fire_hook("ping")
    importers = {int(pid) for pid in read_lines(tmp_path / "imports.txt")}
    assert rig.plugin_pids()["f"] in importers
    assert os.getpid() not in importers
