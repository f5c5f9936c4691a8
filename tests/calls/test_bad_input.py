"""What a caller's webhooks can carry that the database or TwiML can't: NUL and other control
characters, SIP addresses, megabytes of text, numbers too big to store. The caller carries on;
a malformed id or number gets 400 naming the field."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.messages.models import Message
from app.settings import Settings
from app.telephony.sandbox.caller import Press, Say
from app.telephony.sandbox.signing import signed_post
from tests.calls.conftest import ACME, CALLER, Phone

pytestmark = pytest.mark.usefixtures("demo_clients")

CALL_SID = "CA" + "7" * 32
SIP_CALLER = "sip:" + "night.shift.reception" * 8 + "@pbx.example.com"  # 189 characters


def post(client: TestClient, settings: Settings, path: str, **fields: str) -> httpx.Response:
    form = {"CallSid": CALL_SID, "From": CALLER, "To": ACME, "CallStatus": "ringing", **fields}
    return signed_post(client, settings.public_url, path, form, settings.twilio_auth_token)


def the_message(session_factory: sessionmaker[Session]) -> Message:
    with session_factory() as session:
        return session.scalars(select(Message)).one()


def test_a_caller_whose_speech_contains_nul_still_hears_the_next_question(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, Press("2"), Say("Sam\x00 Tay\x1blor"), Say("07911 123456"), Press("1"))

    assert "best number" in call.heard()
    assert all(status in (200, 204) for _, status in call.requests)
    assert the_message(session_factory).answers["name"] == "Sam Taylor"


def test_a_sip_caller_is_answered_and_their_address_kept_whole(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, Press("2"), Say("Sam Taylor"), from_number=SIP_CALLER)

    assert "tell me your name" in call.heard()
    assert the_message(session_factory).caller == SIP_CALLER
    with session_factory() as session:
        assert session.scalars(select(Call.caller)).one() == SIP_CALLER


def test_an_address_longer_than_any_sip_address_is_kept_cut_to_255_characters(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, Press("2"), Say("Sam Taylor"), from_number="sip:" + "x" * 300)

    assert "tell me your name" in call.heard()
    assert the_message(session_factory).caller == "sip:" + "x" * 251


def test_a_caller_who_talks_for_ages_is_heard_and_their_answer_kept_to_2000_characters(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone(ACME, Press("2"), Say("Sam Taylor " * 500), Say("07911 123456"), Press("1"))

    assert "best number" in call.heard()
    assert len(the_message(session_factory).answers["name"]) == 2_000


def test_a_repeat_of_the_first_webhook_for_a_call_the_fallback_took_gets_a_voicemail(
    client: TestClient, settings: Settings
) -> None:
    """The call exists (its recording came in) but we never handed out TwiML for it."""
    post(client, settings, "/twilio/fallback")
    callback = "/twilio/voice/recording?caller=%2B447911123456&called=%2B441134960000"
    recording = {"RecordingSid": "RE" + "6" * 32, "RecordingUrl": "https://api.twilio.com/r"}
    post(client, settings, callback, **recording)

    for path in ("/twilio/voice", "/twilio/voice/step?turn=3", "/twilio/voice/step?turn=0"):
        response = post(client, settings, path)
        assert response.status_code == 200
        assert "<Record" in response.text
    assert "<Leave" in post(client, settings, "/twilio/voice/hold").text


def test_a_voicemail_transcription_keeps_its_lines_loses_control_characters_and_is_capped(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    post(client, settings, "/twilio/fallback")
    words = "Line one\x00.\nLine\ttwo\x07." + " and on" * 5_000
    recording = {"RecordingSid": "RE" + "8" * 32, "RecordingUrl": "https://api.twilio.com/r"}
    callback = "/twilio/voice/recording?caller=%2B447911123456&called=%2B441134960000"
    assert post(client, settings, callback, **recording).status_code == 204

    response = post(client, settings, "/twilio/voice/transcription", TranscriptionText=words)

    assert response.status_code == 204
    transcription = the_message(session_factory).transcription
    assert transcription is not None
    assert transcription.startswith("Line one.\nLine\ttwo.")
    assert len(transcription) == 10_000


def test_a_recording_said_to_last_longer_than_a_day_counts_as_a_day(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    post(client, settings, "/twilio/fallback")
    callback = "/twilio/voice/recording?caller=%2B447911123456&called=%2B441134960000"
    response = post(
        client, settings, callback,
        RecordingSid="RE" + "9" * 32, RecordingUrl="https://api.twilio.com/r",
        RecordingDuration="99999999999",
    )  # fmt: skip

    assert response.status_code == 204
    assert the_message(session_factory).recording_seconds == 86_400


def test_a_recording_another_call_already_holds_is_refused_quietly_and_loses_nothing(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Twilio never sends one; a forger with the token might. A repeat, not a 500."""
    callback = "/twilio/voice/recording?caller=%2B447911123456&called=%2B441134960000"
    recording = {"RecordingSid": "RE" + "5" * 32, "RecordingUrl": "https://api.twilio.com/r"}
    post(client, settings, "/twilio/fallback")
    assert post(client, settings, callback, **recording).status_code == 204

    other_call = {"CallSid": "CA" + "3" * 32}
    post(client, settings, "/twilio/fallback", **other_call)
    response = post(client, settings, callback, **recording, **other_call)

    assert response.status_code == 204
    with session_factory() as session:
        (kept,) = session.scalars(select(Message)).all()
        first_call = session.scalars(select(Call).where(Call.sid == CALL_SID)).one()
    assert (kept.call_id, kept.recording_sid) == (first_call.id, "RE" + "5" * 32)


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/twilio/voice", "CallSid", "CA" + "1" * 63),
        ("/twilio/voice/recording", "RecordingSid", "RE" + "1" * 63),
        ("/twilio/voice/recording", "RecordingUrl", "javascript:alert(1)"),
        ("/twilio/voice/recording", "RecordingDuration", "-1"),
        ("/twilio/voice/recording", "RecordingDuration", "١٢"),  # digits, but not ASCII ones
        ("/twilio/voice/hold", "QueueTime", "1e3"),
        ("/twilio/voice/status", "CallDuration", "1" + "0" * 13),
    ],
)
def test_a_malformed_id_or_number_gets_400_naming_the_field(
    client: TestClient, settings: Settings, path: str, field: str, value: str
) -> None:
    recording = {"RecordingSid": "RE" + "1" * 32, "RecordingUrl": "https://api.twilio.com/r"}
    response = post(client, settings, path, **{**recording, field: value})

    assert response.status_code == 400
    assert field in response.json()["detail"]


@pytest.mark.parametrize("turn", ["99999999999999999999", "2147483648", "٣", " 1", "1_0", "-1"])
def test_a_step_whose_turn_is_not_a_number_the_database_holds_gets_400(
    client: TestClient, settings: Settings, turn: str
) -> None:
    post(client, settings, "/twilio/voice")

    response = post(client, settings, f"/twilio/voice/step?{urlencode({'turn': turn})}", Digits="2")

    assert response.status_code == 400
    assert "turn" in response.json()["detail"]


def test_a_control_character_in_a_flow_file_is_not_read_out_and_the_twiml_stays_xml(
    phone: Phone, load_client: Callable[[str], None]
) -> None:
    load_client(r"""
        client: bell
        name: Bell
        numbers: ["+441134960888"]
        timezone: Europe/London
        steps:
          hello:
            type: say
            text: "Ding\a dong\0, nobody\ufffe is in."
            next: taken
          taken:
            type: take_message
    """)

    call = phone("+441134960888")

    assert "Ding dong, nobody is in." in call.heard()
    assert all(status in (200, 204) for _, status in call.requests)
