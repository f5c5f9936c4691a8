"""Callers who reach a flow's queue step wait for a PA; nobody is lost while they wait."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from app.telephony.sandbox.caller import Press
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.console.conftest import HARBOUR_LAW, Ring, entries, messages, wait_for_entry


def test_a_caller_who_asks_for_a_person_waits_in_the_queue_with_what_they_said(
    ring: Ring, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    caller = ring(HARBOUR_LAW, Press("0"))

    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")

    assert entry.answers == {"caller_is": "urgent"}
    assert entry.queue_name == "harbour-law"
    assert entry.pa_id is None
    fake_twilio.hang_up(caller.call_sid)
    assert "Thank you for holding" in caller.conversation().heard()


def test_a_caller_who_hangs_up_while_waiting_is_abandoned_and_leaves_a_partial_message(
    ring: Ring, fake_twilio: FakeTwilio, session_factory: sessionmaker[Session]
) -> None:
    caller = ring(HARBOUR_LAW, Press("0"))
    wait_for_entry(fake_twilio, session_factory, "waiting")

    fake_twilio.hang_up(caller.call_sid)
    caller.conversation()

    (entry,) = entries(session_factory)
    assert entry.status == "abandoned"
    assert entry.ended_at is not None
    (message,) = messages(session_factory)
    assert message.outcome == "partial"
    assert message.answers == {"caller_is": "urgent"}
    assert message.call_id == entry.call_id


def test_a_caller_past_the_hold_limit_times_out_and_the_flow_takes_their_message(
    ring: Ring, session_factory: sessionmaker[Session]
) -> None:
    caller = ring(HARBOUR_LAW, Press("0"), hold_wait=0)

    heard = caller.conversation().heard()

    assert "Our assistants are all on other calls" in heard
    (entry,) = entries(session_factory)
    assert entry.status == "timed_out"
    (message,) = messages(session_factory)
    assert message.answers["caller_is"] == "urgent"
