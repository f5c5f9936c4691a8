"""Each kind of step, heard from the caller's end of a signed webhook conversation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.messages.models import Message
from app.telephony.sandbox.caller import HangUp, Press, Say
from tests.calls.conftest import Phone
from tests.clock import FakeClock

SURGERY = """
    client: step-kinds
    name: Step Kinds Surgery
    numbers: ["+441134960555"]
    timezone: Europe/London
    hours:
      sunday: ["08:00-12:00"]
    steps:
      jingle:
        type: say
        audio: https://example.com/jingle.mp3
        next: open_now
      open_now:
        type: branch
        rules:
          - {when: open, goto: reception}
        otherwise: patient
      reception:
        type: say
        text: The surgery is open this morning.
        next: patient
      patient:
        type: ask
        prompt: Are you a registered patient?
        save_as: registered
        expect: yes_no
        next: which
      which:
        type: branch
        rules:
          - {answer: registered, equals: "yes", goto: nhs_number}
        otherwise: sorry
      nhs_number:
        type: ask
        prompt: Please key in your six digit patient number, then press hash.
        save_as: patient_number
        expect: digits
        max_digits: 6
        next: taken
      sorry:
        type: take_message
        say: We'll ask reception to call you back about registering.
        next: bye
      taken:
        type: take_message
        urgency: routine
        next: bye
      bye:
        type: hangup
        say: Thank you, goodbye.
"""


def the_message(session_factory: sessionmaker[Session]) -> Message:
    with session_factory() as session:
        return session.scalars(select(Message)).one()


def test_yes_no_digits_and_an_answer_branch_lead_to_a_message(
    phone: Phone, load_client: Callable[[str], None], session_factory: sessionmaker[Session]
) -> None:
    load_client(SURGERY)
    call = phone("+441134960555", Say("Yes please"), Press("123456"))

    assert "(plays https://example.com/jingle.mp3)" in call.transcript()
    assert "Thank you, goodbye." in call.heard()
    assert the_message(session_factory).answers == {
        "registered": "yes",
        "patient_number": "123456",
    }


def test_a_no_at_a_yes_no_question_follows_the_other_branch(
    phone: Phone, load_client: Callable[[str], None], session_factory: sessionmaker[Session]
) -> None:
    load_client(SURGERY)
    call = phone("+441134960555", Press("2"), HangUp())

    assert "call you back about registering" in call.heard()
    assert the_message(session_factory).answers == {"registered": "no"}


def test_opening_hours_are_judged_on_local_time_on_the_night_the_clocks_go_forward(
    phone: Phone, load_client: Callable[[str], None], clock: FakeClock
) -> None:
    load_client(SURGERY)
    # 2026-03-29: at 01:00 UTC London jumps to BST. 07:30 UTC is 08:30 on the surgery's clock.
    clock.set(dt.datetime(2026, 3, 29, 7, 30, tzinfo=dt.UTC))
    assert "The surgery is open this morning." in phone("+441134960555", HangUp()).heard()
    # A week earlier, still on GMT, 07:30 UTC is 07:30 local: not yet open.
    clock.set(dt.datetime(2026, 3, 22, 7, 30, tzinfo=dt.UTC))
    assert "open this morning" not in phone("+441134960555", HangUp()).heard()
