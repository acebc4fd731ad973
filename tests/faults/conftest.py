"""Fault-test fixtures: a three-instance Rigger, failure capture and orphan checks.

The standard layout puts the misbehaving instance ``faulty`` between two
well-behaved ``Recorder`` instances, ``before`` and ``after``, so every test
can see that the plugins on both sides of a fault still complete and merge.

Besides the suite-wide check that no child process outlives a test, the
check here also finds orphans: processes started under this test session
that were reparented away from it (a plugin's children after the plugin
died). They are recognised by an environment marker every process started
from this session inherits.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil
import pytest

from rigger_sandbox import HookError, Rigger

from .fault_plugins import (
    Background,
    BadHookTable,
    FailsToStart,
    Faulty,
    Recorder,
    SlowHook,
)

SESSION_MARK = "RIGGER_FAULT_TESTS_SESSION"
os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)

# Multiprocessing helpers live for the whole test session by design.
_MP_HELPER_MARKS = ("forkserver import main", "resource_tracker import main")

# Bound on how long killed processes may take to disappear.
GONE_TIMEOUT_S = 10.0

FAULTY = "faulty"
GOOD = ("before", "after")


class RecordingRigger(Rigger):
    """A Rigger that keeps every failure handed to handle_failure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: list[HookError] = []

    def handle_failure(self, error: HookError) -> None:
        self.failures.append(error)


def is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.01
) -> None:
    """Poll ``predicate`` until it holds; fail the test naming ``what`` past timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not true within {timeout}s")
        time.sleep(poll)


def assert_all_gone(pids: Iterable[int], what: str, timeout: float) -> None:
    """Assert every pid ends within ``timeout``; kill survivors so none outlive us."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if not is_gone(pid)]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for pid in alive:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    assert not alive, f"{what}: {len(alive)} of {len(pids)} still alive: {alive}"


def _session_processes() -> list[psutil.Process]:
    """Live processes that carry this session's marker, except helpers and us."""
    mark = os.environ[SESSION_MARK]
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "status"]):
        info = proc.info
        if info["pid"] == os.getpid() or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(info["cmdline"] or ())
        try:
            if proc.environ().get(SESSION_MARK) != mark:
                continue
        except psutil.Error:
            continue
        if any(m in cmdline for m in _MP_HELPER_MARKS) and info["ppid"] in (
            os.getpid(),
            1,
        ):
            continue
        found.append(proc)
    return found


def _describe(procs: list[psutil.Process]) -> str:
    lines = []
    for proc in procs:
        try:
            lines.append(f"pid {proc.pid} ppid {proc.ppid()}: {proc.cmdline()}")
        except psutil.Error:
            lines.append(f"pid {proc.pid} (gone while listing)")
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def no_orphans(no_leaked_children: None) -> Iterator[None]:
    """Fail the test if any process it started is still alive, orphaned or not."""
    before = {proc.pid for proc in _session_processes()}
    yield
    deadline = time.monotonic() + GONE_TIMEOUT_S
    while True:
        left = [p for p in _session_processes() if p.pid not in before]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if left:
        description = _describe(left)
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        pytest.fail("processes started by the test outlived it:\n" + description)


@pytest.fixture
def rig_factory(no_orphans: None) -> Iterator[Callable[..., RecordingRigger]]:
    """Build and start ``before``, ``faulty``, ``after``; shut all down after.

    ``rig_factory(faulty={...instance overrides}, plugins={...extra}, **top)``.
    The faulty instance's plugin defaults to ``Faulty``; the other plugins of
    ``fault_plugins`` it may name instead are registered too.
    """
    riggers: list[RecordingRigger] = []

    def make(
        faulty: dict[str, Any] | None = None,
        plugins: dict[str, Any] | None = None,
        start: bool = True,
        **top: Any,
    ) -> RecordingRigger:
        instances: dict[str, Any] = {
            "before": {"plugin": "recorder"},
            FAULTY: {"plugin": "faulty", **(faulty or {})},
            "after": {"plugin": "recorder"},
        }
        instances.update(plugins or {})
        rig = RecordingRigger(config={**top, "plugins": instances})
        riggers.append(rig)
        rig.register_plugin(Recorder, "recorder")
        rig.register_plugin(Faulty, "faulty")
        rig.register_plugin(SlowHook, "slow_hook")
        rig.register_plugin(Background, "background")
        rig.register_plugin(FailsToStart, "fails_to_start")
        rig.register_plugin(BadHookTable, "bad_hook_table")
        if start:
            rig.start()
        return rig

    yield make
    for rig in riggers:
        rig.shutdown()


class LogCollector(logging.Handler):
    """Collects records of the rigger_sandbox loggers at every level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, name_prefix: str = "rigger_sandbox") -> list[str]:
        return [
            r.getMessage() for r in list(self.records) if r.name.startswith(name_prefix)
        ]


@pytest.fixture
def sandbox_logs() -> Iterator[LogCollector]:
    logger = logging.getLogger("rigger_sandbox")
    collector = LogCollector()
    old_level = logger.level
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    yield collector
    logger.removeHandler(collector)
    logger.setLevel(old_level)
