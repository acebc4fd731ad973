"""The README's first example, runnable: ``python examples/first_plugin.py``.

Registers a plugin class defined in this script under the name ``test``,
fires the start and finish of one test and prints the merged result. The
artifact log lands in ``var/test/`` below the current directory.
"""

import os

from rigger_sandbox import Rigger, RiggerBasePlugin

HERE = os.path.dirname(os.path.abspath(__file__))


class Test(RiggerBasePlugin):
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


def main():
    os.makedirs("var/test", exist_ok=True)
    rig = Rigger(os.path.join(HERE, "rigger.yaml"))
    rig.register_plugin(Test, "test")
    rig.register_hook_callback("start_test", "pre", artifact_path, name="path")
    rig.register_hook_callback("finish_test", "pre", artifact_path, name="path")
    with rig:
        rig.fire_hook("start_test", test_name="my_test", test_location="var/test")
        result = rig.fire_hook(
            "finish_test",
            test_name="my_test",
            test_location="var/test",
            test_result="passed",
            grab_result=True,
        )
    print("finished:", result["finished"])
    print("artifact_path:", result["artifact_path"])


if __name__ == "__main__":
    main()
