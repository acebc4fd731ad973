"""A parent process for the parent-death tests, run as a script and then SIGKILLed.

Usage: python parent_script.py OUT_DIR START_METHOD

It starts a Rigger with an idle plugin and a busy one, writes the plugin pids
to OUT_DIR/pids.json, then fires an event whose hook in ``busy`` starts a
Python subprocess with a grandchild (their pids go to OUT_DIR/pids) and blocks
until the test kills this process.
"""

from __future__ import annotations

import json
import os
import sys

from rigger_sandbox import Rigger

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_plugins.py")


def main(out_dir: str, start_method: str) -> None:
    rig = Rigger(
        config={
            "start_method": start_method,
            "plugins": {
                "idle": {"plugin": f"{PLUGINS}:Recorder"},
                "busy": {"plugin": f"{PLUGINS}:Faulty"},
            },
        }
    )
    rig.start()
    rig.fire_hook("work", seq=0)
    tmp = os.path.join(out_dir, "pids.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(rig.plugin_pids(), handle)
    os.replace(tmp, os.path.join(out_dir, "pids.json"))
    rig.fire_hook(
        "work",
        seq=1,
        fault="spawn",
        arg={"out": out_dir, "kind": "subprocess", "then": "hang"},
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
