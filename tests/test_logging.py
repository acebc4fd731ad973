"""Point 15: plugin output and logging reach the parent's logging with the ident."""

from __future__ import annotations

import logging
import uuid

import pytest

from .conftest import wait_for_log
from .sample_plugins import Faulty, Talker


def tagged(record, ident):
    text = f"{record.name} {record.getMessage()} {getattr(record, 'ident', '')}"
    return ident in text


@pytest.fixture
def talker(make_rigger, caplog, start_method):
    caplog.set_level(logging.DEBUG, logger="rigger_sandbox")
    return make_rigger(
        {"chatty": {"plugin": "talker"}},
        register={"talker": Talker},
        start_method=start_method,
    )


@pytest.mark.parametrize("channel", ["stdout", "stderr", "fd1", "logging"])
def test_plugin_output_reaches_parent_logging_tagged_with_ident(
    talker, caplog, channel
):
    token = f"token-{channel}-{uuid.uuid4().hex}"
    talker.fire_hook("talk", channel=channel, token=token)
    record = wait_for_log(caplog, lambda r: token in r.getMessage())
    assert record.name.startswith("rigger_sandbox")
    assert tagged(record, "chatty")


def test_plugin_log_level_is_kept(talker, caplog):
    token = f"token-{uuid.uuid4().hex}"
    talker.fire_hook("talk", channel="logging", token=token)
    record = wait_for_log(caplog, lambda r: token in r.getMessage())
    assert record.levelno == logging.WARNING


def test_plugin_output_never_corrupts_the_reply(talker):
    # Bytes on fd 1 that are not protocol must not break the hook's reply.
    talker.fire_hook("talk", channel="fd1", token="\x00\xff garbage " * 50)
    assert talker.global_data["talked"] is True


def test_parent_stdout_and_stderr_stay_clean(make_rigger, capfd):
    rig = make_rigger(
        {"chatty": {"plugin": "talker"}, "bad": {"plugin": "faulty", "mode": "raise"}},
        register={"talker": Talker, "faulty": Faulty},
        squash_exceptions=True,
    )
    for channel in ["stdout", "stderr", "fd1", "logging"]:
        rig.fire_hook("talk", channel=channel, token="should-not-print")
    rig.fire_hook("go")
    rig.shutdown()
    out, err = capfd.readouterr()
    assert out == ""
    assert "should-not-print" not in err


def test_log_message_logs_at_info_by_default(make_rigger, caplog):
    caplog.set_level(logging.DEBUG, logger="rigger_sandbox")
    rig = make_rigger({}, start=False)
    rig.log_message("hello from the user")
    record = wait_for_log(
        caplog, lambda r: "hello from the user" in r.getMessage(), timeout=0
    )
    assert record.levelno == logging.INFO
    assert record.name.startswith("rigger_sandbox")
