"""Fault 6: output floods never touch the protocol; a corrupted channel is a crash."""

from __future__ import annotations

import pytest

from rigger_sandbox import PluginCrashed, ProtocolError

from .conftest import FAULTY, GOOD, wait_until
from .containment import check_contained, fire

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])

FLOOD_MB = 4
# Forwarded output is cut into records of bounded size; this is a generous
# ceiling for "bounded", far below the megabytes written.
MAX_RECORD_CHARS = 256 * 1024


@pytest.mark.timeout(120)
def test_megabytes_of_output_are_forwarded_in_bounded_chunks_beside_the_protocol(
    rig_factory, sandbox_logs
):
    rig = rig_factory(squash_exceptions=False)

    result = fire(rig, 1, fault="flood", arg=FLOOD_MB)

    # The hook's reply arrived intact, in between the plugin's output.
    assert [result[f"done_{ident}"] for ident in (*GOOD, FAULTY)] == [1, 1, 1]
    assert rig.global_data["seen"] == {"before": [1], "faulty": [1], "after": [1]}

    def plugin_output() -> list[str]:
        return [
            record.getMessage()
            for record in list(sandbox_logs.records)
            if FAULTY in record.name or FAULTY in record.getMessage()[:200]
        ]

    for marker in ("FLOOD-STDOUT-END", "FLOOD-RAW-END", "FLOOD-STDERR-END"):
        wait_until(
            lambda m=marker: any(m in text for text in plugin_output()),
            30.0,
            f"{marker} forwarded to logging",
        )
    messages = plugin_output()
    assert max(len(text) for text in messages) <= MAX_RECORD_CHARS
    assert sum(text.count("z") for text in messages) >= 2 << 20
    assert sum(text.count("y" * 1023) for text in messages) >= 2 * FLOOD_MB * 1024

    after = fire(rig, 2)
    assert after[f"done_{FAULTY}"] == 2
    assert sum(rig.stats()[FAULTY]["failures"].values()) == 0
    assert rig.stats()[FAULTY]["restarts"] == 0


@pytest.mark.timeout(60)
@SQUASH
def test_garbage_written_to_the_reply_pipe_is_a_protocol_error(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig,
        fault="garbage_on_pipes",
        expected=ProtocolError,
        squash=squash,
        restarted=True,
    )

    assert outcome.error.kind == "protocol"


@pytest.mark.timeout(60)
@SQUASH
def test_closing_the_reply_pipe_mid_hook_is_treated_as_a_crash(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig,
        fault="close_pipes",
        expected=(PluginCrashed, ProtocolError),
        squash=squash,
        restarted=True,
    )

    assert outcome.error.kind in ("crash", "protocol")
