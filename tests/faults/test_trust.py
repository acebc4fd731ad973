"""Trust: replies of untrusted plugins are decoded with an allow-list.

A hostile plugin returns objects whose unpickling would create a file in the
parent, by the ordinary return path and by a frame it forges on its reply
pipe. The file must never appear. Trusted plugins may send any value.
"""

from __future__ import annotations

import pytest

from rigger_sandbox import HookError, ProtocolError, UnsafeValueError

from .conftest import FAULTY
from .containment import check_contained, fire
from .fault_plugins import CustomThing, safe_values

SQUASH = pytest.mark.parametrize("squash", [True, False], ids=["squashed", "raised"])


@pytest.mark.timeout(60)
@SQUASH
@pytest.mark.parametrize("how", ["open", "system"])
def test_untrusted_value_that_would_create_a_file_is_refused_unbuilt(
    rig_factory, tmp_path, squash, how
):
    target = tmp_path / f"pwned-by-{how}"
    rig = rig_factory(squash_exceptions=squash)

    outcome = check_contained(
        rig,
        fault="evil",
        arg=[str(target), how],
        expected=UnsafeValueError,
        squash=squash,
        restarted=None,
    )

    assert "untrusted" in str(outcome.error)
    assert how in outcome.error.message  # names the refused type
    assert not target.exists()
    rig.shutdown()
    assert not target.exists()


@pytest.mark.timeout(60)
@SQUASH
def test_forged_reply_frame_that_would_create_a_file_is_refused_unbuilt(
    rig_factory, tmp_path, squash
):
    target = tmp_path / "pwned-by-forged-frame"
    rig = rig_factory(squash_exceptions=squash)

    check_contained(
        rig,
        fault="forged_frame",
        arg=str(target),
        expected=(UnsafeValueError, ProtocolError),
        squash=squash,
        restarted=None,
    )

    assert not target.exists()
    rig.shutdown()
    assert not target.exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["instance", "top-level"])
def test_trusted_plugin_may_return_a_custom_class_instance(rig_factory, where):
    if where == "instance":
        rig = rig_factory(faulty={"trusted": True})
    else:
        rig = rig_factory(trusted=True)

    result = fire(rig, 1, fault="custom_value")

    assert type(result["thing"]) is CustomThing
    assert result["thing"] == CustomThing("widget", [1, 2, 3])


@pytest.mark.timeout(60)
def test_untrusted_plugin_may_not_return_a_custom_class_instance(rig_factory):
    rig = rig_factory(squash_exceptions=False)

    with pytest.raises(UnsafeValueError) as caught:
        fire(rig, 1, fault="custom_value")

    assert "CustomThing" in str(caught.value)
    assert isinstance(caught.value, HookError) and caught.value.ident == FAULTY


@pytest.mark.timeout(60)
def test_untrusted_plugin_may_return_every_allow_listed_type(rig_factory):
    rig = rig_factory(squash_exceptions=False)

    result = fire(rig, 1, fault="safe_values")

    expected = safe_values()
    assert result["values"] == expected
    for key, value in expected.items():
        assert type(result["values"][key]) is type(value), key


@pytest.mark.timeout(60)
def test_trusted_plugin_may_return_a_value_only_dill_can_carry(rig_factory):
    rig = rig_factory(faulty={"trusted": True})

    result = fire(rig, 1, fault="lambda_value")

    assert result["fn"](2) == 6


@pytest.mark.timeout(60)
def test_untrusted_plugin_may_not_return_a_value_only_dill_can_carry(rig_factory):
    rig = rig_factory(squash_exceptions=False)

    with pytest.raises(HookError) as caught:
        fire(rig, 1, fault="lambda_value")

    assert caught.value.ident == FAULTY and "lambda" in str(caught.value)
    assert "fn" not in rig.global_data


@pytest.mark.timeout(60)
def test_parent_may_send_an_untrusted_plugin_a_value_only_dill_can_carry(
    rig_factory,
):
    rig = rig_factory(squash_exceptions=False)

    result = fire(rig, 1, fault="call_argument", arg=lambda x: x + 1)

    assert result["called"] == 5
