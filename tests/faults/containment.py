"""The containment contract every fault is checked against, in one place.

``check_contained`` fires three events through ``before``, ``faulty`` and
``after``: a good one, the faulty one and a good one again, and asserts:

- the parent survives and the next event works, the faulty plugin included;
- the well-behaved instances on both sides of the fault complete and merge;
- nothing of the faulty hook's updates is merged (whole or not at all);
- with ``squash_exceptions`` the failure reaches ``handle_failure`` once, and
  without it ``fire_hook`` raises it; either way it is of the expected class
  and names the instance and the hook;
- the faulty plugin was restarted (new pid, the old one gone) when the fault
  ended its process, and kept its process when it did not;
- ``rig.stats()`` counts the failure under the error's kind, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rigger_sandbox import HookError

from .conftest import FAULTY, GOOD, RecordingRigger, assert_all_gone

FAILURE_KINDS = ("exception", "crash", "timeout", "limit", "protocol")


@dataclass
class Outcome:
    """What the faulty event produced, for fault-specific assertions."""

    error: HookError
    result: dict[str, Any] | None
    old_pid: int
    new_pid: int


def fire(rig: RecordingRigger, seq: int, **kwargs: Any) -> dict[str, Any]:
    result = rig.fire_hook("work", grab_result=True, seq=seq, **kwargs)
    assert isinstance(result, dict)
    return result


def check_contained(
    rig: RecordingRigger,
    *,
    fault: str,
    arg: Any = None,
    expected: type[HookError] | tuple[type[HookError], ...],
    squash: bool,
    restarted: bool | None,
    during: Callable[[], None] | None = None,
) -> Outcome:
    """Provoke ``fault`` in ``faulty`` and check the containment contract.

    ``restarted`` is True when the fault must end the plugin's process, False
    when the process must survive it, None when either is acceptable.
    ``during`` runs before the faulty event is fired (to arm a killer thread).
    """
    first = fire(rig, 1)
    assert [first[f"done_{ident}"] for ident in (*GOOD, FAULTY)] == [1, 1, 1]
    old_pid = rig.plugin_pids()[FAULTY]
    assert isinstance(old_pid, int)

    if during is not None:
        during()
    result: dict[str, Any] | None = None
    if squash:
        result = fire(rig, 2, fault=fault, arg=arg)
        assert len(rig.failures) == 1, f"handle_failure got {rig.failures!r}"
        error = rig.failures[0]
    else:
        with pytest.raises(HookError) as caught:
            fire(rig, 2, fault=fault, arg=arg)
        error = caught.value
        assert rig.failures == [], "handle_failure must not run without squashing"

    assert isinstance(error, expected), f"expected {expected}, got {error!r}"
    assert error.ident == FAULTY and error.hook == "work"
    assert FAULTY in str(error)
    assert "work" in str(error)

    # The good instances merged; nothing of the faulty hook's updates did.
    if result is not None:
        assert result["done_before"] == 2 and result["done_after"] == 2
        assert "done_faulty" not in result and "partial" not in result
    assert rig.global_data["seen"] == {"before": [1, 2], "faulty": [1], "after": [1, 2]}
    assert "big" not in rig.global_data

    # The next event works, the faulty instance included.
    third = fire(rig, 3)
    assert [third[f"done_{ident}"] for ident in (*GOOD, FAULTY)] == [3, 3, 3]
    assert rig.global_data["seen"][FAULTY] == [1, 3]
    new_pid = rig.plugin_pids()[FAULTY]
    assert isinstance(new_pid, int)

    stats = rig.stats()[FAULTY]
    if restarted is True:
        assert new_pid != old_pid
        assert_all_gone([old_pid], "the faulty plugin's old process", 5.0)
        assert stats["restarts"] == 1
    elif restarted is False:
        assert new_pid == old_pid
        assert stats["restarts"] == 0
    assert stats["failures"][error.kind] == 1, stats
    assert sum(stats["failures"][kind] for kind in FAILURE_KINDS) == 1, stats
    for ident in GOOD:
        assert sum(rig.stats()[ident]["failures"].values()) == 0
    return Outcome(error, result, old_pid, new_pid)
