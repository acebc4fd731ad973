"""Artifact log: one log file per test and plugin instance.

The plugin of the README's first example, ready to load by path::

    plugins:
      artifacts:
        plugin: plugins/artifact_log.py:ArtifactLog

Hooks:

``start_test(test_name, test_location, artifact_path=None)``
    Creates ``<artifact_path>-<ident>.log`` holding the test name on its first
    line. ``artifact_path`` is taken from the namespaces when a pre-callback
    (or the event itself) provides it; otherwise it is
    ``<test_location>/<test_name>``. Missing folders are created.

``finish_test(test_name, test_result, test_location, artifact_path=None)``
    Appends the result to that file and returns the global update
    ``{finished_key: [test_name]}``, so the global list grows by one name per
    finished test.

Configuration keys (all optional, read from ``self.data``):

``finished_key`` (default ``"finished"``)
    Global namespace key of the list of finished tests.
``start_hook`` / ``finish_hook`` (defaults ``"start_test"`` / ``"finish_test"``)
    Events to bind the two hooks to.
"""

from __future__ import annotations

import os

from rigger_sandbox import RiggerBasePlugin


class ArtifactLog(RiggerBasePlugin):
    """Write a per-test log file and collect the names of finished tests."""

    def plugin_initialize(self) -> None:
        self.finished_key = _string_setting(self, "finished_key", "finished")
        start_hook = _string_setting(self, "start_hook", "start_test")
        finish_hook = _string_setting(self, "finish_hook", "finish_test")
        self.register_plugin_hook(start_hook, self.start_test)
        self.register_plugin_hook(finish_hook, self.finish_test)

    def start_test(
        self, test_name: str, test_location: str, artifact_path: str | None = None
    ) -> None:
        path = self._log_path(test_name, test_location, artifact_path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as log:
            log.write(test_name + "\n")

    def finish_test(
        self,
        test_name: str,
        test_result: str,
        test_location: str,
        artifact_path: str | None = None,
    ) -> tuple[None, dict[str, list[str]]]:
        path = self._log_path(test_name, test_location, artifact_path)
        with open(path, "a") as log:
            log.write(str(test_result) + "\n")
        return None, {self.finished_key: [test_name]}

    def _log_path(
        self, test_name: str, test_location: str, artifact_path: str | None
    ) -> str:
        if artifact_path is None:
            artifact_path = os.path.join(test_location, test_name)
        return f"{artifact_path}-{self.ident}.log"


def _string_setting(plugin: RiggerBasePlugin, key: str, default: str) -> str:
    value = plugin.data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"plugin instance {plugin.ident!r}: key {key!r} must be a non-empty "
            f"string, got {value!r}"
        )
    return value
