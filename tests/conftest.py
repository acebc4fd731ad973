"""Shared fixtures: start methods, a Rigger factory and the leaked-child check."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from rigger_sandbox import Rigger

START_METHODS = ("fork", "forkserver", "spawn")

# Long-lived helper processes that multiprocessing starts once per parent by
# design; they are not plugin processes and outlive any one Rigger.
_MP_HELPER_MARKS = ("forkserver", "resource_tracker")

REAP_TIMEOUT_S = 10.0


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    """Every start method the sandbox supports; use it where the method matters."""
    return request.param


def _is_mp_helper(proc: psutil.Process) -> bool:
    """True for the forkserver or resource tracker itself, not for its children.

    Processes the forkserver forks inherit its command line, so only a direct
    child of this process counts as the helper.
    """
    try:
        if proc.ppid() != os.getpid():
            return False
        cmdline = " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return True
    return any(mark in cmdline for mark in _MP_HELPER_MARKS)


def descendants() -> list[psutil.Process]:
    """Every live descendant of the test process except multiprocessing helpers."""
    return [
        proc
        for proc in psutil.Process().children(recursive=True)
        if not _is_mp_helper(proc)
    ]


def describe(procs: list[psutil.Process]) -> str:
    lines = []
    for proc in procs:
        try:
            lines.append(f"pid {proc.pid} ({proc.status()}): {proc.cmdline()}")
        except psutil.Error:
            lines.append(f"pid {proc.pid} (gone while listing)")
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def no_leaked_children() -> Iterator[None]:
    """Fail the test if a child process outlives it (after riggers shut down)."""
    yield
    leftovers = descendants()
    if not leftovers:
        return
    # Give children that are already exiting a bounded time to be reaped.
    _, alive = psutil.wait_procs(leftovers, timeout=REAP_TIMEOUT_S)
    alive = [proc for proc in alive if proc.is_running()]
    if alive:
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=REAP_TIMEOUT_S)
        pytest.fail("child processes leaked after the test:\n" + describe(alive))


MakeRigger = Callable[..., Rigger]


@pytest.fixture
def make_rigger(no_leaked_children: None) -> Iterator[MakeRigger]:
    """Build a Rigger from a dict configuration; every one is shut down after.

    ``make_rigger(plugins, register={name: cls}, start=True, rigger_cls=Rigger,
    **settings)`` where ``plugins`` is the ``plugins:`` mapping and settings are
    the top-level keys.
    """
    riggers: list[Rigger] = []

    def make(
        plugins: dict[str, Any],
        *,
        register: dict[str, type] | None = None,
        start: bool = True,
        rigger_cls: type[Rigger] = Rigger,
        **settings: Any,
    ) -> Rigger:
        rig = rigger_cls(config={**settings, "plugins": plugins})
        riggers.append(rig)
        for name, cls in (register or {}).items():
            rig.register_plugin(cls, name)
        if start:
            rig.start()
        return rig

    yield make
    for rig in riggers:
        rig.shutdown()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a configuration mapping as YAML under tmp_path and return its path."""

    def write(config: dict[str, Any], name: str = "rigger.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config))
        return path

    return write


def wait_for_log(
    caplog: pytest.LogCaptureFixture,
    predicate: Callable[[logging.LogRecord], bool],
    timeout: float = 15.0,
) -> logging.LogRecord:
    """Return the first captured record matching predicate, polling to a deadline.

    Plugin output is forwarded asynchronously, so the record may arrive after
    the hook's reply.
    """
    deadline = time.monotonic() + timeout
    while True:
        for record in caplog.records:
            if predicate(record):
                return record
        if time.monotonic() > deadline:
            seen = "\n".join(
                f"{r.name} {r.levelname}: {r.getMessage()}" for r in caplog.records
            )
            pytest.fail(f"no matching log record within {timeout}s; saw:\n{seen}")
        time.sleep(0.02)
