"""Fault 7: unserializable and oversized return values are clear, bounded errors."""

from __future__ import annotations

import resource

import pytest

from rigger_sandbox import HookError, ProtocolError

from .containment import check_contained

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])

PAYLOAD_MB = 96


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.timeout(60)
@SQUASH
def test_unserializable_return_value_is_an_error_naming_its_type(rig_factory, squash):
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig,
        fault="unserializable",
        expected=HookError,
        squash=squash,
        restarted=None,
    )

    assert "generator" in str(outcome.error)


@pytest.mark.timeout(90)
@SQUASH
def test_return_value_over_max_message_mb_is_an_error_naming_the_size(
    rig_factory, squash
):
    rig = rig_factory(squash_exceptions=squash, max_message_mb=1)
    peak_before = peak_rss_mb()

    outcome = check_contained(
        rig,
        fault="oversized",
        arg=PAYLOAD_MB,
        expected=HookError,
        squash=squash,
        restarted=None,
    )

    assert "max_message_mb" in str(outcome.error)
    assert peak_rss_mb() - peak_before < PAYLOAD_MB / 2


@pytest.mark.timeout(60)
def test_forged_frame_announcing_gigabytes_is_refused_before_allocation(
    rig_factory,
):
    rig = rig_factory(squash_exceptions=False, max_message_mb=1)
    peak_before = peak_rss_mb()

    outcome = check_contained(
        rig,
        fault="forged_huge_frame",
        expected=ProtocolError,
        squash=False,
        restarted=True,
    )

    assert "max_message_mb" in str(outcome.error)
    assert peak_rss_mb() - peak_before < 64
