"""Callers ringing the demo clients out of hours, through Twilio's signed webhooks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.dispatch.models import Delivery
from app.messages.models import Message
from app.telephony.sandbox.caller import HangUp, Press, Say, Silence
from tests.calls.conftest import ACME, CALLER, Phone
from tests.clock import FakeClock

pytestmark = pytest.mark.usefixtures("demo_clients")

CHRISTMAS_NIGHT = dt.datetime(2026, 12, 25, 2, 0, tzinfo=dt.UTC)
THURSDAY_NOON_LONDON = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SUMMER_BANK_HOLIDAY_NOON = dt.datetime(2026, 8, 31, 11, 0, tzinfo=dt.UTC)  # Monday, 12:00 BST


def messages(session_factory: sessionmaker[Session]) -> list[Message]:
    with session_factory() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def routine_message(name: str = "Sam Taylor") -> tuple[Press | Say, ...]:
    return (
        Press("2"),
        Say(name),
        Say("07911 123456"),
        Press("1"),
        Say("The kitchen tap drips all night"),
    )


def test_a_night_caller_leaves_a_whole_message_that_is_saved_and_queued_for_the_engineer(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, *routine_message())

    assert "I heard 0 7 9, 1 1 1, 2 3 4, 5 6." in call.heard()
    assert all(status in (200, 204) for _, status in call.requests)
    (message,) = messages(session_factory)
    assert message.caller == CALLER
    assert message.answers == {
        "reason": "routine",
        "name": "Sam Taylor",
        "callback": "+447911123456",
    }
    assert message.outcome == "message"
    assert message.status == "new"
    assert message.transcription == "The kitchen tap drips all night"
    assert message.recording_sid is not None
    assert message.recording_seconds
    with session_factory() as session:
        owed = session.scalars(select(Delivery).where(Delivery.message_id == message.id)).all()
    assert owed, "saving a message queues its first notifications in the same transaction"
    assert {d.status for d in owed} == {"pending"}


def test_an_emergency_caller_is_put_through_to_the_engineer_on_call(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, Press("1"), transfers="answer")

    assert "dialling" in call.transcript()
    (message,) = messages(session_factory)
    assert message.outcome == "connected"
    assert message.status == "acknowledged"


def test_when_the_engineer_does_not_answer_the_caller_leaves_an_emergency_message(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    phone(ACME, Press("1"), Say("Jo Bloggs"), Say("07911 123456"), Press("1"), Say("Pipe burst"))

    (message,) = messages(session_factory)
    assert message.urgency == "emergency"
    assert message.answers["name"] == "Jo Bloggs"


def test_on_christmas_day_the_caller_hears_the_holiday_greeting(
    phone: Phone, clock: FakeClock
) -> None:
    clock.set(CHRISTMAS_NIGHT)
    assert "bank holiday" in phone(ACME, HangUp()).heard()


def test_on_a_uk_bank_holiday_monday_at_noon_the_office_is_closed(
    phone: Phone, clock: FakeClock
) -> None:
    clock.set(SUMMER_BANK_HOLIDAY_NOON)
    call = phone(ACME, HangUp())
    assert "bank holiday" in call.heard()
    assert "dialling" not in call.transcript()


def test_in_office_hours_the_call_goes_to_the_office_and_a_missed_one_becomes_a_message(
    phone: Phone, clock: FakeClock, session_factory: sessionmaker[Session]
) -> None:
    clock.set(THURSDAY_NOON_LONDON)
    call = phone(ACME, Say("Ann Other"), Say("07911 123456"), Press("1"), Say("Call me back"))

    assert "dialling +441134960123" in call.transcript()
    (message,) = messages(session_factory)
    assert message.answers["name"] == "Ann Other"


def test_a_caller_who_hangs_up_mid_flow_leaves_what_they_said_marked_partial(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    phone(ACME, Press("2"), Say("Sam Taylor"), HangUp())

    (message,) = messages(session_factory)
    assert message.outcome == "partial"
    assert message.answers == {"reason": "routine", "name": "Sam Taylor"}


def test_a_silent_caller_is_asked_again_and_still_leaves_a_record_of_the_call(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, Silence(), Silence(), Silence(), Silence(), Silence(), Silence())

    assert "Sorry" in call.heard()
    (message,) = messages(session_factory)
    assert message.caller == CALLER


def test_every_call_is_kept_with_its_timeline(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, *routine_message())

    with session_factory() as session:
        row = session.scalars(select(Call).where(Call.sid == call.call_sid)).one()
    assert row.status == "completed"
    assert row.ended_at is not None


@pytest.mark.parametrize(
    ("number", "greeting"),
    [
        ("+17185550100", "Riverside"),
        ("+61255501234", "Harbour"),
    ],
)
def test_the_other_demo_clients_answer_with_their_own_greeting(
    phone: Phone, number: str, greeting: str, session_factory: sessionmaker[Session]
) -> None:
    call = phone(number, HangUp())
    assert greeting in call.heard()
    assert len(messages(session_factory)) == 1
