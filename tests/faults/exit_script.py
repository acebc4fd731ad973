"""A script that exits while a daemon thread waits inside ``fire_hook``.

Usage: python exit_script.py OUT_DIR START_METHOD

It starts a Rigger with an idle plugin and a busy one, writes the plugin pids
to OUT_DIR/pids.json, fires from a daemon thread an event whose hook (with no
timeout) announces itself in OUT_DIR/in-hook and blocks, waits for that
announcement, creates OUT_DIR/exiting and returns.  Interpreter exit must then
end the plugin processes instead of waiting for the event to finish.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from rigger_sandbox import Rigger

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fault_plugins.py")
HOOK_STARTED_DEADLINE_S = 60.0


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
    with open(os.path.join(out_dir, "pids.json"), "w") as handle:
        json.dump(rig.plugin_pids(), handle)

    in_hook = os.path.join(out_dir, "in-hook")
    event = threading.Thread(
        target=rig.fire_hook,
        args=("work",),
        kwargs={"seq": 1, "fault": "hang", "arg": in_hook},
        daemon=True,
    )
    event.start()
    deadline = time.monotonic() + HOOK_STARTED_DEADLINE_S
    while not os.path.exists(in_hook):
        if time.monotonic() > deadline:
            sys.exit("the hook never announced itself")
        time.sleep(0.01)

    with open(os.path.join(out_dir, "exiting"), "w") as handle:
        handle.write(str(os.getpid()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
