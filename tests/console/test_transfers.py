"""A warm transfer from the PA's call to the client's on-call contact: the caller on hold, the
contact rung with a whisper and "press 1", the PA briefs them and hands over; or, when the
contact doesn't take it, the caller comes back to the PA, off hold. All through the fake
Twilio's conference participants, over HTTP, with its signed callbacks."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.console.models import QueueEntry
from app.console.transfer import TransferRefusal
from app.console.transferring import Ringing, contact_leg_status, start_transfer
from app.db import transaction
from app.messages.models import Message, MessageEvent
from app.settings import Settings
from app.telephony.sandbox.conversation import CallerInput, HangUp, Press, Say, Silence
from app.telephony.sandbox.fake_resources import CallRecord
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.signing import signed_post
from tests.clock import FakeClock
from tests.conftest import AUTH_TOKEN
from tests.console.conftest import (
    PA_PHONE,
    AddPa,
    AnswerCall,
    Answered,
    entry_of,
    in_conference,
    presence_of,
)

ON_CALL_LAWYER = "+61491570157"  # James O'Brien, on call for Harbour Law this week


def room_of(entry_id: int) -> str:
    return f"nightdesk-entry-{entry_id}"


def phones_pick_up(fake: FakeTwilio, client: TestClient, contact: list[CallerInput]) -> None:
    """PAs' phones press 1; the on-call lawyer's phone plays `contact`."""

    def script_for(call: CallRecord) -> list[CallerInput] | None:
        if "/twilio/console/" not in (call.url or ""):
            return None
        return contact if call.to == ON_CALL_LAWYER else [Press("1")]

    fake.parties.pick_up(script_for, client)


def save_message(call: Answered) -> None:
    saved = call.pa.press(
        f"/console/calls/{call.entry_id}/message", caller_is="existing", name="Jo Citizen",
        callback="0491 570 156", matter="Settlement tomorrow", urgency="urgent",
        message="Needs the contract before 9 am",
    )  # fmt: skip
    assert saved.status_code == 303


def the_message(sessions: sessionmaker[Session]) -> tuple[Message, list[MessageEvent]]:
    with sessions() as session:
        message = session.scalars(select(Message)).one()
        events = list(
            session.scalars(
                select(MessageEvent)
                .where(MessageEvent.message_id == message.id)
                .order_by(MessageEvent.id)
            )
        )
        return message, events


def transfer_state(sessions: sessionmaker[Session], entry_id: int) -> str | None:
    return entry_of(sessions, entry_id).transfer_state


def calls_to(fake: FakeTwilio, number: str) -> list[CallRecord]:
    return [c for c in fake.calls if c.to == number]


def test_a_contact_who_presses_1_is_briefed_and_the_caller_is_handed_over_to_them(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    phones_pick_up(fake_twilio, console_client, [Press("1")])
    save_message(call)

    started = call.pa.press(f"/console/calls/{call.entry_id}/transfer")

    assert started.headers["location"] == f"/console/calls/{call.entry_id}"
    fake_twilio.wait_for(lambda: transfer_state(session_factory, call.entry_id) == "connected")
    seats = fake_twilio.lines.seats(room_of(call.entry_id))
    [contact_leg] = calls_to(fake_twilio, ON_CALL_LAWYER)
    assert seats[call.caller.call_sid].hold, "the caller waits on hold while the PA briefs"
    assert not seats[contact_leg.sid].end_on_exit
    page = call.pa.page(f"/console/calls/{call.entry_id}")
    assert "James O&#39;Brien is on the line" in page.text
    assert "Hand over to James O&#39;Brien" in page.text

    handed = call.pa.press(f"/console/calls/{call.entry_id}/hand-over")

    assert handed.headers["location"] == f"/console/calls/{call.entry_id}"
    seats = fake_twilio.lines.seats(room_of(call.entry_id))
    assert set(seats) == {call.caller.call_sid, contact_leg.sid}, "the PA has left"
    assert not seats[call.caller.call_sid].hold
    assert seats[contact_leg.sid].end_on_exit, "the contact hanging up now ends the call"
    assert transfer_state(session_factory, call.entry_id) == "handed_over"
    message, events = the_message(session_factory)
    assert message.status == "acknowledged"
    assert message.acknowledged_by == "James O'Brien"
    assert message.called_back_at is not None
    kinds = [(e.kind, e.detail.get("via")) for e in events]
    assert ("called_back", "transfer") in kinds
    assert ("acknowledged", "transfer") in kinds
    fake_twilio.wait_for(lambda: entry_of(session_factory, call.entry_id).ended_at is not None)
    assert presence_of(session_factory, call.pa.user_id) == "wrap_up"

    fake_twilio.hang_up(call.caller.call_sid)  # the caller and the lawyer are done
    contact = fake_twilio.wait_for(lambda: fake_twilio.parties.conversations.get(contact_leg.sid))
    assert contact is not None
    assert "Nightdesk transfer for Harbour Law, press 1 to take the caller." in contact.heard()


def test_a_contact_who_doesnt_answer_gives_the_caller_back_to_the_pa_off_hold(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    fake_twilio.set_call_outcome(ON_CALL_LAWYER, "no-answer")
    save_message(call)

    call.pa.press(f"/console/calls/{call.entry_id}/transfer")

    fake_twilio.wait_for(lambda: transfer_state(session_factory, call.entry_id) == "failed")
    fake_twilio.settle()
    seats = fake_twilio.lines.seats(room_of(call.entry_id))
    assert not seats[call.caller.call_sid].hold, "the caller is back with the PA"
    assert len(seats) == 2
    message, events = the_message(session_factory)
    assert message.status == "new", "the message goes on escalating"
    assert [e.detail for e in events if e.kind == "transfer_failed"] == [{"reason": "no-answer"}]
    page = call.pa.page(f"/console/calls/{call.entry_id}")
    assert "didn't take the call: the caller is back with you" in page.text
    assert "Transfer to James O&#39;Brien" in page.text, "the PA may try again"


def test_a_contact_who_doesnt_press_1_never_gets_the_caller(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    phones_pick_up(fake_twilio, console_client, [Silence()])  # a voicemail box answers
    save_message(call)

    call.pa.press(f"/console/calls/{call.entry_id}/transfer")

    fake_twilio.wait_for(lambda: transfer_state(session_factory, call.entry_id) == "failed")
    [contact_leg] = calls_to(fake_twilio, ON_CALL_LAWYER)
    assert contact_leg.sid not in fake_twilio.lines.seats(room_of(call.entry_id))
    _, events = the_message(session_factory)
    assert [e.detail for e in events if e.kind == "transfer_failed"] == [{"reason": "no key"}]


def test_one_transfer_at_a_time(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    fake_twilio.set_call_outcome(ON_CALL_LAWYER, "in-progress")  # rings on: nobody picks up
    save_message(call)
    call.pa.press(f"/console/calls/{call.entry_id}/transfer")

    again = call.pa.press(f"/console/calls/{call.entry_id}/transfer")

    assert again.headers["location"].endswith("?problem=busy")
    assert len(calls_to(fake_twilio, ON_CALL_LAWYER)) == 1
    assert entry_of(session_factory, call.entry_id).transfers == 1


def test_only_the_calls_own_pa_can_transfer_it_and_only_once_the_message_is_saved(
    answered_call: AnswerCall,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    other = add_pa("ana@nightdesk.test", name="Ana Lima", phone="+15005550007")

    unsaved = call.pa.press(f"/console/calls/{call.entry_id}/transfer")
    save_message(call)
    not_theirs = other.press(f"/console/calls/{call.entry_id}/transfer")
    hand_over = other.press(f"/console/calls/{call.entry_id}/hand-over")

    assert unsaved.headers["location"].endswith("?problem=no_message")
    assert not_theirs.headers["location"].endswith("?problem=not_yours")
    assert hand_over.headers["location"].endswith("?problem=gone")
    assert calls_to(fake_twilio, ON_CALL_LAWYER) == []
    assert entry_of(session_factory, call.entry_id).transfer_state is None
    assert PA_PHONE in {c.to for c in fake_twilio.calls}


def test_a_pa_sends_the_caller_on_to_the_flows_voicemail(
    answered_call: AnswerCall,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call(Press("0"), Say("Jo Citizen"), HangUp())
    in_conference(fake_twilio, session_factory, call.entry_id)
    other = add_pa("ana@nightdesk.test", name="Ana Lima", phone="+15005550007")
    assert (
        other.press(f"/console/calls/{call.entry_id}/voicemail")
        .headers["location"]
        .endswith("?problem=not_with_you")
    )

    sent = call.pa.press(f"/console/calls/{call.entry_id}/voicemail")

    assert sent.headers["location"].endswith("?problem=voicemail")
    heard = call.caller.conversation()
    assert "I'm sorry for the wait." in heard.heard(), heard.transcript()
    assert "May I have your full name, please?" in heard.heard()
    fake_twilio.wait_for(lambda: presence_of(session_factory, call.pa.user_id) == "wrap_up")
    page = call.pa.page(f"/console/calls/{call.entry_id}")
    assert "Finish wrap-up" in page.text


def test_two_transfers_started_at_once_ring_the_contact_once(
    answered_call: AnswerCall,
    app: FastAPI,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    """Both clicks read the entry before either changed it (here: one session's stale view of
    it); the conditional UPDATE lets one through."""
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    save_message(call)
    flows = app.state.console.flows

    with transaction(session_factory) as session:
        seen = session.get(QueueEntry, call.entry_id)  # held, so both calls read this view
        first = start_transfer(session, flows, call.entry_id, call.pa.user_id, clock())
        second = start_transfer(session, flows, call.entry_id, call.pa.user_id, clock())

    assert seen is not None
    assert seen.transfer_state is None, "the second click's view: no transfer yet"
    assert isinstance(first, Ringing)
    assert second is TransferRefusal.busy
    assert entry_of(session_factory, call.entry_id).transfers == 1


def test_a_late_callback_from_an_earlier_attempt_leaves_the_next_one_alone(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    save_message(call)
    fake_twilio.set_call_outcome(ON_CALL_LAWYER, "busy")
    call.pa.press(f"/console/calls/{call.entry_id}/transfer")  # attempt 1: busy
    fake_twilio.wait_for(lambda: transfer_state(session_factory, call.entry_id) == "failed")
    fake_twilio.set_call_outcome(ON_CALL_LAWYER, "in-progress")
    call.pa.press(f"/console/calls/{call.entry_id}/transfer")  # attempt 2: ringing
    fake_twilio.settle()

    late = {"CallSid": "CA" + "1" * 32, "CallStatus": "busy", "To": ON_CALL_LAWYER}
    path = f"/twilio/console/transfer/status?entry={call.entry_id}&attempt=1"
    sent = signed_post(console_client, settings.public_url, path, late, AUTH_TOKEN)

    assert sent.status_code == 204
    again = entry_of(session_factory, call.entry_id)
    assert (again.transfer_state, again.transfers) == ("calling", 2)
    assert fake_twilio.lines.seats(room_of(call.entry_id))[call.caller.call_sid].hold


def test_another_pa_cannot_hand_over_a_transfer_under_way(
    answered_call: AnswerCall,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    phones_pick_up(fake_twilio, console_client, [Press("1")])
    save_message(call)
    call.pa.press(f"/console/calls/{call.entry_id}/transfer")
    fake_twilio.wait_for(lambda: transfer_state(session_factory, call.entry_id) == "connected")
    other = add_pa("ana@nightdesk.test", name="Ana Lima", phone="+15005550007")

    refused = other.press(f"/console/calls/{call.entry_id}/hand-over")

    assert refused.headers["location"].endswith("?problem=gone")
    assert transfer_state(session_factory, call.entry_id) == "connected"
    assert fake_twilio.lines.seats(room_of(call.entry_id))[call.caller.call_sid].hold


def test_a_transfer_asked_for_as_the_pas_call_ends_rings_nobody(
    answered_call: AnswerCall,
    app: FastAPI,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    """The entry was read while the PA's leg was up, and it ended before the UPDATE."""
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    save_message(call)
    entries = QueueEntry.metadata.tables[QueueEntry.__tablename__]

    with transaction(session_factory) as session:
        seen = session.get(QueueEntry, call.entry_id)  # as the request read it (held: the
        assert seen is not None  # session keeps what it read only while someone holds it)
        session.connection().execute(  # the PA's leg ends meanwhile (behind the ORM's back)
            update(entries).where(entries.c.id == call.entry_id).values(ended_at=clock())
        )
        outcome = start_transfer(
            session, app.state.console.flows, call.entry_id, call.pa.user_id, clock()
        )

    assert seen.ended_at is None, "the request's view of the entry: the leg still up"
    assert outcome is TransferRefusal.busy
    assert entry_of(session_factory, call.entry_id).transfer_state is None


def test_a_contacts_leg_ending_as_the_next_attempt_starts_leaves_that_attempt_alone(
    answered_call: AnswerCall,
    app: FastAPI,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    """Attempt 1's final callback read the entry while attempt 1 was still ringing; by its
    UPDATE, attempt 1 had failed and attempt 2 begun."""
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    save_message(call)
    fake_twilio.set_call_outcome(ON_CALL_LAWYER, "in-progress")
    call.pa.press(f"/console/calls/{call.entry_id}/transfer")  # attempt 1: ringing
    fake_twilio.settle()
    entries = QueueEntry.metadata.tables[QueueEntry.__tablename__]

    with transaction(session_factory) as session:
        seen = session.get(QueueEntry, call.entry_id)  # held: the callback's view
        session.connection().execute(  # meanwhile attempt 1 failed and attempt 2 began
            update(entries).where(entries.c.id == call.entry_id)
            .values(transfer_state="calling", transfers=2)
        )  # fmt: skip
        back = contact_leg_status(session, call.entry_id, 1, "CA" + "1" * 32, "no-answer", clock())

    assert seen is not None
    assert (seen.transfers, seen.transfer_state) == (1, "calling")
    assert back is None, "attempt 2's caller stays on hold"
    assert transfer_state(session_factory, call.entry_id) == "calling"


def test_a_pa_who_hangs_up_while_the_contact_is_on_the_line_hands_the_caller_over(
    answered_call: AnswerCall,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()
    in_conference(fake_twilio, session_factory, call.entry_id)
    phones_pick_up(fake_twilio, console_client, [Press("1")])
    save_message(call)
    call.pa.press(f"/console/calls/{call.entry_id}/transfer")
    fake_twilio.wait_for(lambda: transfer_state(session_factory, call.entry_id) == "connected")
    pa_leg = entry_of(session_factory, call.entry_id).pa_call_sid
    assert pa_leg is not None
    room = room_of(call.entry_id)
    fake_twilio.wait_for(lambda: not fake_twilio.lines.seats(room)[pa_leg].end_on_exit)

    fake_twilio.hang_up(pa_leg)  # the PA puts their phone down after the briefing

    fake_twilio.wait_for(
        lambda: transfer_state(session_factory, call.entry_id) == "handed_over", timeout=10
    )
    [contact_leg] = calls_to(fake_twilio, ON_CALL_LAWYER)
    seats = fake_twilio.lines.seats(room)
    assert set(seats) == {call.caller.call_sid, contact_leg.sid}
    assert not seats[call.caller.call_sid].hold
    assert seats[contact_leg.sid].end_on_exit
    message, _ = the_message(session_factory)
    assert message.called_back_at is not None
