"""Warm transfers and supervisors joining a PA's call: what may happen, and what follows, as
functions of plain values. The units of work (`transferring.py`) and Twilio (`phone.py`) do
what these decide.

A warm transfer: the caller is put on hold, the client's on-call contact is rung with a
whisper and must press 1 (so a voicemail box never takes the caller), the PA briefs them,
then leaves, and the caller comes off hold with the contact. If the contact doesn't answer or
doesn't press 1, the caller comes off hold with the PA again, and the message the PA saved
carries on escalating as any message does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TransferState(StrEnum):
    calling = "calling"  # the caller is on hold; the contact's phone is ringing
    connected = "connected"  # the contact pressed 1 and joined: the PA briefs them
    handed_over = "handed_over"  # the PA left; the caller and the contact talk
    failed = "failed"  # no answer, no key, busy: the caller is back with the PA


IN_PROGRESS = (TransferState.calling, TransferState.connected)


class TransferRefusal(StrEnum):
    not_yours = "not_yours"  # not this PA's call (or no such call)
    not_with_you = "not_with_you"  # the caller isn't with the PA (not answered, or over)
    no_message = "no_message"  # save the caller's message first: the transfer is recorded on it
    no_on_call = "no_on_call"  # the client has nobody on call with a phone
    busy = "busy"  # a transfer is already under way or done


TRANSFER_REFUSALS = {
    TransferRefusal.not_yours: "That call is no longer yours.",
    TransferRefusal.not_with_you: "The caller isn't on the line with you.",
    TransferRefusal.no_message: "Save the caller's message first: the transfer is recorded on it.",
    TransferRefusal.no_on_call: "Nobody with a phone is on call for this client now.",
    TransferRefusal.busy: "A transfer of this caller is already under way.",
}


@dataclass(frozen=True)
class CallFacts:
    """Where a PA's call stands, as far as a transfer cares."""

    mine: bool
    answered: bool
    ended: bool  # the PA's phone leg has ended
    message_saved: bool
    conference_known: bool  # the PA's conference has reported its sid
    transfer: TransferState | None


def refuse_transfer(call: CallFacts, on_call_phone: str | None) -> TransferRefusal | None:
    """Why this PA can't start a transfer now, or None: they may. One transfer at a time, and a
    transfer that handed the caller over is final; one that failed may be tried again."""
    if not call.mine:
        return TransferRefusal.not_yours
    if not call.answered or call.ended or not call.conference_known:
        return TransferRefusal.not_with_you
    if not call.message_saved:
        return TransferRefusal.no_message
    if on_call_phone is None:
        return TransferRefusal.no_on_call
    if call.transfer is not None and call.transfer is not TransferState.failed:
        return TransferRefusal.busy
    return None


def contact_key_joins(digits: str | None) -> bool:
    """Only 1 puts the contact through: silence, another key, or a voicemail box does not."""
    return digits == "1"


FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def contact_leg_fails_transfer(
    state: TransferState | None, current: bool, call_status: str
) -> bool:
    """The contact's leg has ended: before the PA handed the caller over (the contact never
    pressed 1, or hung up while being briefed), the transfer has failed and the caller goes
    back to the PA. After the hand over, or for an earlier attempt, nothing changes here."""
    return current and state in IN_PROGRESS and call_status in FINAL_CALL_STATUSES


def may_hand_over(state: TransferState | None) -> bool:
    """The PA may leave once the contact has joined."""
    return state is TransferState.connected


def may_send_to_voicemail(call: CallFacts) -> bool:
    """The PA may send their caller on to the flow's voicemail (the queue's fallback path,
    where the flow takes the message) while the caller is with them, before a message is saved
    and with no transfer under way."""
    return (
        call.mine
        and call.answered
        and not call.ended
        and not call.message_saved
        and call.transfer not in IN_PROGRESS
    )


class Monitor(StrEnum):
    """How a supervisor joins a PA's call."""

    listen = "listen"  # hears both sides; nobody hears them
    whisper = "whisper"  # the PA hears them; the caller doesn't
    barge = "barge"  # joins the conversation


@dataclass(frozen=True)
class JoinAs:
    """A conference participant's settings for a supervisor joining, as Twilio names them.
    https://www.twilio.com/docs/voice/api/conference-participant-resource"""

    muted: bool
    coaching: bool
    call_sid_to_coach: str | None


def join_as(mode: Monitor, pa_call_sid: str) -> JoinAs:
    """Listen is muted; whisper coaches the PA's leg (only the PA hears); barge is unmuted."""
    match mode:
        case Monitor.listen:
            return JoinAs(muted=True, coaching=False, call_sid_to_coach=None)
        case Monitor.whisper:
            return JoinAs(muted=False, coaching=True, call_sid_to_coach=pa_call_sid)
        case Monitor.barge:
            return JoinAs(muted=False, coaching=False, call_sid_to_coach=None)
