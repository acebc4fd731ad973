"""Exits without shutdown() while a background hook's event would hang for ever.

Usage: bg_exit_script.py PIDS_FILE. Writes the plugin pids, then returns.
"""

import json
import sys

from rigger_sandbox import Rigger
from tests.faults.review2_plugins import FiresAHang

if __name__ == "__main__":
    rig = Rigger(config={"plugins": {"p": {"plugin": "p"}}})
    rig.register_plugin(FiresAHang, "p")
    rig.start()
    with open(sys.argv[1], "w") as out:
        json.dump([pid for pid in rig.plugin_pids().values() if pid], out)
    rig.fire_hook("start")
