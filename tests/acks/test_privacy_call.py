"""Privacy mode on the notification call, from the contact's end: the PIN first, the message only
after the right one, and three wrong tries end the call.

Priya's first channel is voice, and she has a PIN of her own (1357); the client's is 2468.
Twilio's side is signed webhooks, as in test_notification_call.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.flows.pins import hash_pin
from app.messages.models import MessageRead, MessageStatus
from app.settings import Settings
from tests.clock import FakeClock
from tests.dispatch.conftest import NUMBER, PLUMBERS, PRIYA, Desk, read_twiml

CALL_SID = "CA" + "c" * 32
KEY_URL = "https://nightdesk.test/twilio/notify/voice/key?d={}"
CLIENT_PIN, PRIYAS_PIN = "2468", "1357"
PRIVATE_PLUMBERS = PLUMBERS.replace(
    "channels: [voice, sms]}", f'channels: [voice, sms], pin: "{hash_pin(PRIYAS_PIN)}"}}'
).replace(
    "    caller_updates: false\n",
    f'    caller_updates: false\n    privacy:\n      pin: "{hash_pin(CLIENT_PIN)}"\n',
)
CONTENT = ("Ann Lee", "burst pipe", "8 8 8", "called")


@pytest.fixture
def desk(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    load_client: Callable[[str], None],
) -> Desk:
    assert PRIVATE_PLUMBERS.count("pin:") == 2  # the client's and Priya's, as hashes
    assert f'pin: "{PRIYAS_PIN}"' not in PRIVATE_PLUMBERS
    load_client(PRIVATE_PLUMBERS)
    return Desk(client, settings, session_factory, clock)


@pytest.fixture
def leak(desk: Desk) -> int:
    return desk.message(name="Ann Lee", callback="+441134960888", issue="burst pipe")


@pytest.fixture
def call(desk: Desk, leak: int) -> int:
    return desk.sent(leak, "priya", sid=CALL_SID)


def answer(desk: Desk, delivery: int) -> ET.Element:
    params = {"CallSid": CALL_SID, "From": NUMBER, "To": PRIYA, "CallStatus": "in-progress",
              "AnsweredBy": "human"}  # fmt: skip
    return twiml(desk, f"/twilio/notify/voice?d={delivery}", params)


def key(desk: Desk, delivery: int, digits: str, tries: int = 1) -> ET.Element:
    """Digits keyed on try `tries` (the Gather's action carries it, as the TwiML said)."""
    params = {"CallSid": CALL_SID, "Digits": digits, "CallStatus": "in-progress"}
    return twiml(desk, f"/twilio/notify/voice/key?d={delivery}&tries={tries}", params)


def twiml(desk: Desk, path: str, params: dict[str, str]) -> ET.Element:
    response = desk.post(path, params)
    assert response.status_code == 200, response.text
    return read_twiml(response.text)


def said(document: ET.Element) -> str:
    return " ".join(say.text or "" for say in document.iter("Say"))


def test_the_call_asks_for_the_pin_and_says_nothing_of_the_message(desk: Desk, call: int) -> None:
    document = answer(desk, call)

    gather = document.find("Gather")
    assert gather is not None
    assert gather.attrib["finishOnKey"] == "#"
    assert gather.attrib["action"] == KEY_URL.format(call) + "&tries=1"
    heard = said(document)
    assert heard == (
        "This is Nightdesk with an urgent message for Acme Plumbing. "
        "Please enter your PIN, then press the hash key."
    )
    assert [c for c in CONTENT if c in ET.tostring(document, encoding="unicode")] == []


def test_the_right_pin_reads_the_message_and_the_options_then_keys_work_as_usual(
    desk: Desk, leak: int, call: int
) -> None:
    document = key(desk, call, PRIYAS_PIN)

    heard = said(document)
    assert "Ann Lee called." in heard
    assert "They said: issue: burst pipe." in heard
    assert heard.endswith("Press 3 to be connected to the caller now.")
    assert desk.timeline(leak)[-1] == "pin_accepted"

    assert said(key(desk, call, "1")) == "Thank you. The message is yours. Goodbye."
    assert desk.look(leak).status == MessageStatus.acknowledged


def test_a_wrong_pin_three_times_ends_the_call_with_nothing_read(
    desk: Desk, leak: int, call: int
) -> None:
    first = key(desk, call, "0000", tries=1)
    second = key(desk, call, CLIENT_PIN, tries=2)  # Priya has a PIN of her own
    third = key(desk, call, "1", tries=3)  # "take it" is not a way round the PIN

    for attempt, document in ((2, first), (3, second)):
        gather = document.find("Gather")
        assert gather is not None
        assert gather.attrib["action"] == KEY_URL.format(call) + f"&tries={attempt}"
        assert said(document).startswith("That PIN isn't right. Please enter your PIN")
    assert third.find("Gather") is None
    assert third.find("Hangup") is not None
    assert said(third) == "That PIN isn't right. Please check the message in the portal. Goodbye."
    everything = "".join(ET.tostring(d, encoding="unicode") for d in (first, second, third))
    assert [c for c in CONTENT if c in everything] == []
    assert desk.look(leak).status == MessageStatus.notified
    assert desk.timeline(leak)[-1] == "pin_refused"


def test_keys_before_the_pin_are_read_as_the_pin_not_as_options(
    desk: Desk, leak: int, call: int
) -> None:
    document = key(desk, call, "3")

    assert document.find("Dial") is None
    assert said(document).startswith("That PIN isn't right.")
    assert desk.look(leak).status == MessageStatus.notified


def test_silence_at_the_pin_counts_as_a_try(desk: Desk, call: int) -> None:
    path = f"/twilio/notify/voice/key?d={call}&silence=1&tries=3"
    document = twiml(desk, path, {"CallSid": CALL_SID, "CallStatus": "in-progress"})

    assert document.find("Hangup") is not None
    assert "Ann Lee" not in said(document)


def test_hearing_the_message_after_the_pin_is_in_the_read_log(
    desk: Desk, leak: int, call: int
) -> None:
    key(desk, call, PRIYAS_PIN)
    key(desk, call, "2")  # hear it again: the same call, one read

    with desk.sessions() as session:
        reads = session.scalars(select(MessageRead).where(MessageRead.message_id == leak)).all()
    assert [(r.reader, r.via) for r in reads] == [("Priya Shah", "call")]
