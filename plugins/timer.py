"""Timer: records how long each test took into the global namespace.

``start_test(test_name)`` notes the time in the plugin process;
``finish_test(test_name)`` returns the global update
``{key: {test_name: seconds}}``, so the global mapping gains one entry per
finished test. A test finished without a recorded start (the plugin process
was restarted in between, or the start event was never fired) is skipped::

    plugins:
      timer:
        plugin: plugins/timer.py:Timer

Configuration keys (all optional, read from ``self.data``):

``key`` (default ``"durations"``)
    Global namespace key of the mapping of test names to seconds.
``start_hook`` / ``finish_hook`` (defaults ``"start_test"`` / ``"finish_test"``)
    Events to bind the two hooks to.
``precision`` (default ``6``)
    Digits after the decimal point kept in each duration.
"""

from __future__ import annotations

import time

from rigger_sandbox import RiggerBasePlugin


class Timer(RiggerBasePlugin):
    """Measure the wall-clock time between the start and finish events."""

    def plugin_initialize(self) -> None:
        self.key = _string_setting(self, "key", "durations")
        start_hook = _string_setting(self, "start_hook", "start_test")
        finish_hook = _string_setting(self, "finish_hook", "finish_test")
        precision = self.data.get("precision", 6)
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise ValueError(
                f"plugin instance {self.ident!r}: key 'precision' must be an "
                f"integer, got {precision!r}"
            )
        self.precision = precision
        self.started: dict[str, float] = {}
        self.register_plugin_hook(start_hook, self.start_test)
        self.register_plugin_hook(finish_hook, self.finish_test)

    def start_test(self, test_name: str) -> None:
        self.started[test_name] = time.monotonic()

    def finish_test(
        self, test_name: str
    ) -> tuple[None, dict[str, dict[str, float]]] | None:
        started = self.started.pop(test_name, None)
        if started is None:
            return None
        seconds = round(time.monotonic() - started, self.precision)
        return None, {self.key: {test_name: seconds}}


def _string_setting(plugin: RiggerBasePlugin, key: str, default: str) -> str:
    value = plugin.data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"plugin instance {plugin.ident!r}: key {key!r} must be a non-empty "
            f"string, got {value!r}"
        )
    return value
