"""The notification call, from the contact's end: what they hear and what their keys do.

Priya's first channel is voice; Sam and Alex are texted. Each test marks what each contact has
been sent, then answers Priya's call through signed webhooks, as Twilio would.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.messages.models import MessageStatus
from tests.dispatch.conftest import ALEX, NUMBER, PRIYA, Desk, read_twiml, ref

CALL_SID = "CA" + "c" * 32
KEY_URL = "https://nightdesk.test/twilio/notify/voice/key?d={}"


def answer(desk: Desk, delivery: int, answered_by: str = "human") -> ET.Element:
    """Priya picks up (or her voicemail does): the TwiML Twilio fetches for the call."""
    params = {
        "CallSid": CALL_SID,
        "From": NUMBER,
        "To": PRIYA,
        "CallStatus": "in-progress",
        "AnsweredBy": answered_by,
    }
    return twiml(desk, f"/twilio/notify/voice?d={delivery}", params)


def press(desk: Desk, delivery: int, digits: str) -> ET.Element:
    params = {"CallSid": CALL_SID, "Digits": digits, "CallStatus": "in-progress"}
    return twiml(desk, f"/twilio/notify/voice/key?d={delivery}", params)


def twiml(desk: Desk, path: str, params: dict[str, str]) -> ET.Element:
    response = desk.post(path, params)
    assert response.status_code == 200, response.text
    return read_twiml(response.text)


def said(document: ET.Element) -> str:
    return " ".join(say.text or "" for say in document.iter("Say"))


@pytest.fixture
def leak(desk: Desk) -> int:
    """A message Alex has been texted about and Priya is being rung about; Sam's text waits."""
    message = desk.message(name="Ann Lee", callback="+441134960888", issue="burst pipe")
    desk.sent(message, "alex")
    return message


@pytest.fixture
def call(desk: Desk, leak: int) -> int:
    return desk.sent(leak, "priya", sid=CALL_SID)


def test_a_person_hears_the_message_and_the_options(desk: Desk, leak: int, call: int) -> None:
    document = answer(desk, call)

    gather = document.find("Gather")
    assert gather is not None
    assert gather.attrib["action"] == KEY_URL.format(call)
    assert (gather.attrib["numDigits"], gather.attrib["timeout"]) == ("1", "8")
    heard = said(document)
    assert f"an urgent message for Acme Plumbing, reference {' '.join(ref(leak))}" in heard
    assert "Ann Lee called." in heard
    assert heard.endswith("Press 3 to be connected to the caller now.")
    say = gather.find("Say")
    assert say is not None
    assert say.attrib["voice"] == "Polly.Amy"
    redirect = document.find("Redirect")
    assert redirect is not None
    assert redirect.text == KEY_URL.format(call) + "&silence=1&tries=1"


def test_an_answering_machine_hears_a_notice_and_nothing_is_acknowledged(
    desk: Desk, leak: int, call: int
) -> None:
    document = answer(desk, call, answered_by="machine_end_beep")

    assert said(document) == (
        "This is Nightdesk with an urgent message for Acme Plumbing. "
        "Please check your text messages."
    )
    assert document.find("Hangup") is not None
    assert desk.look(leak).status == MessageStatus.notified
    # The status callback says the same: the timeline says it once.
    params = {"CallSid": CALL_SID, "CallStatus": "completed", "AnsweredBy": "machine_end_beep"}
    assert desk.post(f"/twilio/notify/voice/status?d={call}", params).status_code == 204
    assert desk.timeline(leak).count("voicemail_pickup") == 1
    assert desk.look(leak).status == MessageStatus.notified


def test_pressing_1_takes_the_message_and_tells_the_others(
    desk: Desk, leak: int, call: int
) -> None:
    document = press(desk, call, "1")

    assert said(document) == "Thank you. The message is yours. Goodbye."
    message = desk.look(leak)
    assert (message.status, message.acknowledged_by) == (MessageStatus.acknowledged, "Priya Shah")
    # Sam's text hadn't gone yet: it never will. Alex had been told: Alex hears who has it.
    [sams] = desk.deliveries(leak, contact_id=desk.contact("sam").id)
    assert sams.status == "cancelled"
    [taken] = desk.deliveries(leak, kind="info")
    assert (taken.address, taken.status) == (ALEX, "pending")
    assert "Priya Shah has taken this message" in (taken.body or "")


def test_pressing_2_hears_it_again(desk: Desk, call: int) -> None:
    document = press(desk, call, "2")

    assert document.find("Gather") is not None
    assert "Ann Lee called." in said(document)


def test_another_key_repeats_the_options(desk: Desk, call: int) -> None:
    document = press(desk, call, "9")

    assert said(document).startswith("Sorry, that isn't one of the options.")
    assert document.find("Gather") is not None


def test_pressing_3_takes_it_and_rings_the_caller_back(desk: Desk, leak: int, call: int) -> None:
    document = press(desk, call, "3")

    assert said(document) == "Connecting you to the caller now."
    dial = document.find("Dial")
    assert dial is not None
    assert dial.attrib["callerId"] == NUMBER
    assert [n.text for n in dial.iter("Number")] == ["+441134960888"]
    assert desk.look(leak).status == MessageStatus.acknowledged
    assert desk.timeline(leak)[-1] == "caller_called_back"


def test_twilio_repeating_the_press_of_3_records_the_call_back_once(
    desk: Desk, leak: int, call: int
) -> None:
    first = press(desk, call, "3")
    again = press(desk, call, "3")

    assert ET.tostring(again) == ET.tostring(first)
    assert desk.timeline(leak).count("caller_called_back") == 1


def test_pressing_3_for_a_withheld_caller_takes_it_without_a_call(desk: Desk) -> None:
    withheld = desk.message(caller="anonymous")
    delivery = desk.sent(withheld, "priya")

    document = press(desk, delivery, "3")

    assert "didn't leave a number" in said(document)
    assert document.find("Dial") is None
    assert desk.look(withheld).status == MessageStatus.acknowledged


def test_silence_repeats_the_message_once_then_says_goodbye(desk: Desk, call: int) -> None:
    silent = {"CallSid": CALL_SID, "CallStatus": "in-progress"}
    again = twiml(desk, f"/twilio/notify/voice/key?d={call}&silence=1&tries=1", silent)
    redirect = again.find("Redirect")
    assert redirect is not None
    assert redirect.text is not None
    assert redirect.text.endswith("tries=2")

    done = twiml(desk, f"/twilio/notify/voice/key?d={call}&silence=1&tries=2", silent)
    assert said(done) == "We'll try you again shortly. Goodbye."
    assert done.find("Hangup") is not None


def test_a_message_already_taken_says_who_has_it(desk: Desk, leak: int, call: int) -> None:
    desk.text(ALEX, "1")

    assert said(answer(desk, call)) == "Alex Reed already has this message. Thank you. Goodbye."
    assert said(press(desk, call, "1")) == (
        "Alex Reed already has this message. Thank you. Goodbye."
    )
    assert desk.look(leak).acknowledged_by == "Alex Reed"


def call_status(desk: Desk, delivery: int, status: str) -> None:
    params = {"CallSid": CALL_SID, "CallStatus": status}
    assert desk.post(f"/twilio/notify/voice/status?d={delivery}", params).status_code == 204


def test_an_answered_call_is_delivered_but_not_acknowledged(
    desk: Desk, leak: int, call: int
) -> None:
    call_status(desk, call, "in-progress")
    call_status(desk, call, "completed")

    [row] = desk.deliveries(leak, id=call)
    assert (row.status, row.provider_status) == ("delivered", "completed")
    assert desk.look(leak).status == MessageStatus.notified


def test_a_call_status_too_long_for_its_column_is_recorded_cut_to_size(
    desk: Desk, leak: int, call: int
) -> None:
    call_status(desk, call, "ringing-" + "x" * 100 + "\x00")

    [row] = desk.deliveries(leak, id=call)
    assert row.provider_status == "ringing-" + "x" * 24


def test_an_unanswered_call_fails_over_to_a_text(desk: Desk, leak: int, call: int) -> None:
    call_status(desk, call, "no-answer")
    call_status(desk, call, "no-answer")

    [row] = desk.deliveries(leak, id=call)
    assert row.status == "failed"
    [text] = desk.deliveries(leak, contact_id=desk.contact("priya").id, channel="sms")
    assert (text.status, text.address) == ("pending", PRIYA)


def test_a_call_about_an_unknown_delivery_ends_politely(desk: Desk) -> None:
    document = answer(desk, 999_999)
    assert "no longer waiting" in said(document)
    assert document.find("Hangup") is not None


@pytest.mark.parametrize(
    "path",
    ["/twilio/notify/voice?d=1", "/twilio/notify/voice/key?d=1", "/twilio/notify/voice/status?d=1"],
)
def test_a_forged_signature_is_refused(desk: Desk, path: str) -> None:
    params = {"CallSid": CALL_SID, "CallStatus": "completed", "Digits": "1"}
    assert desk.post(path, params, token="not-the-token").status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/twilio/notify/voice?d=99999999999999999999",
        "/twilio/notify/voice/key?d=99999999999999999999",
        "/twilio/notify/voice/key?d=1&tries=99999999999999999999",
        "/twilio/notify/voice/status?d=99999999999999999999",
    ],
)
def test_a_delivery_id_no_database_could_hold_is_a_bad_request(desk: Desk, path: str) -> None:
    params = {"CallSid": CALL_SID, "CallStatus": "completed", "Digits": "1"}
    assert desk.post(path, params).status_code == 400
