"""The decisions of a warm transfer and of supervisors joining a call, with plain values."""

from __future__ import annotations

import pytest

from app.console.transfer import (
    CallFacts,
    JoinAs,
    Monitor,
    TransferRefusal,
    TransferState,
    contact_key_joins,
    contact_leg_fails_transfer,
    join_as,
    may_hand_over,
    refuse_transfer,
)

ON_THE_LINE = CallFacts(
    mine=True, answered=True, ended=False, message_saved=True, conference_known=True,
    transfer=None,
)  # fmt: skip
PHONE = "+61491570157"


def with_(**changes: object) -> CallFacts:
    return CallFacts(**{**ON_THE_LINE.__dict__, **changes})


def test_a_pa_with_their_caller_on_the_line_and_the_message_saved_may_transfer() -> None:
    assert refuse_transfer(ON_THE_LINE, PHONE) is None


@pytest.mark.parametrize(
    ("facts", "phone", "refusal"),
    [
        (with_(mine=False), PHONE, TransferRefusal.not_yours),
        (with_(answered=False), PHONE, TransferRefusal.not_with_you),
        (with_(ended=True), PHONE, TransferRefusal.not_with_you),
        (with_(conference_known=False), PHONE, TransferRefusal.not_with_you),
        (with_(message_saved=False), PHONE, TransferRefusal.no_message),
        (ON_THE_LINE, None, TransferRefusal.no_on_call),
        (with_(transfer=TransferState.calling), PHONE, TransferRefusal.busy),
        (with_(transfer=TransferState.connected), PHONE, TransferRefusal.busy),
        (with_(transfer=TransferState.handed_over), PHONE, TransferRefusal.busy),
    ],
)
def test_a_transfer_is_refused(facts: CallFacts, phone: str | None, refusal: str) -> None:
    assert refuse_transfer(facts, phone) == refusal


def test_a_failed_transfer_may_be_tried_again() -> None:
    assert refuse_transfer(with_(transfer=TransferState.failed), PHONE) is None


@pytest.mark.parametrize(("digits", "joins"), [("1", True), ("2", False), (None, False)])
def test_only_1_puts_the_contact_through(digits: str | None, joins: bool) -> None:
    assert contact_key_joins(digits) is joins


@pytest.mark.parametrize(
    ("state", "current", "status", "fails"),
    [
        (TransferState.calling, True, "no-answer", True),
        (TransferState.calling, True, "busy", True),
        (TransferState.calling, True, "completed", True),  # picked up, no key, hung up
        (TransferState.connected, True, "completed", True),  # hung up before the hand over
        (TransferState.calling, True, "ringing", False),
        (TransferState.calling, False, "no-answer", False),  # an earlier attempt's leg
        (TransferState.handed_over, True, "completed", False),  # the call is over as it should
        (TransferState.failed, True, "completed", False),  # already back with the PA
    ],
)
def test_when_the_contacts_leg_ending_fails_the_transfer(
    state: TransferState, current: bool, status: str, fails: bool
) -> None:
    assert contact_leg_fails_transfer(state, current, status) is fails


def test_the_pa_hands_over_only_once_the_contact_is_on_the_line() -> None:
    assert may_hand_over(TransferState.connected)
    assert not may_hand_over(TransferState.calling)
    assert not may_hand_over(None)


@pytest.mark.parametrize(
    ("mode", "joined"),
    [
        (Monitor.listen, JoinAs(muted=True, coaching=False, call_sid_to_coach=None)),
        (Monitor.whisper, JoinAs(muted=False, coaching=True, call_sid_to_coach="CApa")),
        (Monitor.barge, JoinAs(muted=False, coaching=False, call_sid_to_coach=None)),
    ],
)
def test_how_a_supervisor_joins_a_pas_call(mode: Monitor, joined: JoinAs) -> None:
    assert join_as(mode, "CApa") == joined
