"""The README example: artifact logs through pre-callbacks, with a YAML file."""

from __future__ import annotations

import os

from rigger_sandbox import Rigger, RiggerBasePlugin


class Test(RiggerBasePlugin):
    __test__ = False  # a plugin named Test, not a pytest test class

    def plugin_initialize(self):
        self.register_plugin_hook("start_test", self.start_test)
        self.register_plugin_hook("finish_test", self.finish_test)

    def start_test(self, test_name, test_location, artifact_path):
        with open(artifact_path + "-" + self.ident + ".log", "w") as f:
            f.write(test_name + "\n")

    def finish_test(self, test_name, artifact_path, test_result):
        with open(artifact_path + "-" + self.ident + ".log", "a") as f:
            f.write(test_result)
        return None, {"finished": [test_name]}


def artifact_path(test_name, test_location):
    return {"artifact_path": os.path.join(test_location, test_name)}, None


CONFIG = """\
squash_exceptions: True
threaded: True
plugins:
    test:
        enabled: True
        plugin: test
"""


def test_issue_example_writes_artifacts_and_returns_result(tmp_path):
    config = tmp_path / "rigger.yaml"
    config.write_text(CONFIG)
    location = str(tmp_path / "var")
    os.mkdir(location)

    rig = Rigger(str(config))
    rig.register_plugin(Test, "test")
    rig.register_hook_callback("start_test", "pre", artifact_path, name="path")
    rig.register_hook_callback("finish_test", "pre", artifact_path, name="path")
    with rig:
        rig.fire_hook("start_test", test_name="my_test", test_location=location)
        result = rig.fire_hook(
            "finish_test",
            test_name="my_test",
            test_location=location,
            test_result="passed",
            grab_result=True,
        )

    log = tmp_path / "var" / "my_test-test.log"
    assert log.read_text() == "my_test\npassed"
    assert result["finished"] == ["my_test"]
    assert result["artifact_path"] == os.path.join(location, "my_test")
