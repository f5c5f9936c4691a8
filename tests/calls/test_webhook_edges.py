"""What Twilio can throw at the voice webhooks: forgeries, repeats, odd orders, outages."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call, CallEvent
from app.calls.service import CallService
from app.main import create_app
from app.messages.models import Message, MessageEvent
from app.observability import REGISTRY
from app.settings import Settings
from app.telephony.sandbox.caller import HangUp, Press, Say
from app.telephony.sandbox.signing import signed_post
from app.timeutil import as_utc
from tests.calls.conftest import ACME, CALLER, Phone
from tests.clock import FakeClock
from tests.conftest import PUBLIC_URL

pytestmark = pytest.mark.usefixtures("demo_clients")
Post = Callable[..., object]


def voice_params(call_sid: str = "CA" + "1" * 32, **extra: str) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": "AC" + "0" * 32,
        "From": CALLER,
        "To": ACME,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def post(
    client: TestClient,
    settings: Settings,
    path: str,
    params: dict[str, str],
    token: str | None = None,
) -> httpx.Response:
    return signed_post(
        client, settings.public_url, path, params, token or settings.twilio_auth_token
    )


def all_messages(session_factory: sessionmaker[Session]) -> list[Message]:
    with session_factory() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_a_forged_signature_is_refused_with_403(client: TestClient, settings: Settings) -> None:
    response = post(client, settings, "/twilio/voice", voice_params(), token="not-the-token")
    assert response.status_code == 403


def test_an_unsigned_request_is_refused_with_403(client: TestClient) -> None:
    assert client.post("/twilio/voice", data=voice_params()).status_code == 403


def test_a_signature_for_another_url_is_refused(client: TestClient, settings: Settings) -> None:
    good = post(client, settings, "/twilio/voice", voice_params())
    assert good.status_code == 200
    replay = client.post(
        "/twilio/voice/status",
        data=voice_params(CallStatus="completed"),
        headers={"X-Twilio-Signature": good.request.headers["X-Twilio-Signature"]},
    )
    assert replay.status_code == 403


def test_a_webhook_asked_for_with_get_gets_405(client: TestClient) -> None:
    assert client.get("/twilio/voice").status_code == 405


def test_a_bug_in_a_voice_turn_gives_the_caller_the_voicemail_and_the_next_call_is_answered(
    app: FastAPI, client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    class FaultyOnce(CallService):
        faults = 1

        def answer(self, *args: Any, **kwargs: Any) -> str:
            if self.faults:
                self.faults -= 1
                raise RuntimeError("a bug")
            return super().answer(*args, **kwargs)

    app.state.calls = FaultyOnce(app.state.flows)
    first = post(client, settings, "/twilio/voice", voice_params())
    assert first.status_code == 200
    assert "<Record" in first.text
    assert "leave your name" in first.text
    (failed,) = [r for r in caplog.records if r.getMessage() == "call_step_failed"]
    assert failed.exc_info
    assert failed.__dict__["call_sid"] == voice_params()["CallSid"]
    assert "turn=1" in post(client, settings, "/twilio/voice", voice_params()).text


def test_the_apps_middleware_sees_every_webhook(
    app: FastAPI, settings: Settings, demo_clients: None
) -> None:
    """Request ids, tracing, error reporting and sessions are middleware: none may miss Twilio's
    traffic, which is nearly all of it."""
    seen: list[str] = []

    @app.middleware("http")
    async def note_path(request: Any, call_next: Any) -> Any:
        seen.append(request.url.path)
        return await call_next(request)

    with TestClient(app, base_url=PUBLIC_URL) as client:
        post(client, settings, "/twilio/voice", voice_params())
        post(client, settings, "/twilio/voice/step?turn=1", voice_params(Digits="2"))
        post(client, settings, "/twilio/voice/status", voice_params(CallStatus="completed"))

    assert seen == ["/twilio/voice", "/twilio/voice/step", "/twilio/voice/status"]


def test_webhooks_are_timed_by_route_and_refusals_counted(
    client: TestClient, settings: Settings
) -> None:
    def counts() -> tuple[float, float]:
        """The metrics as /metrics shows them (the registry lives as long as the process)."""
        timed = REGISTRY.get_sample_value(
            "nightdesk_webhook_seconds_count", {"route": "/twilio/voice"}
        )
        refused = REGISTRY.get_sample_value("nightdesk_webhooks_rejected_total", {"status": "403"})
        return timed or 0, refused or 0

    timed, refused = counts()
    post(client, settings, "/twilio/voice", voice_params())
    post(client, settings, "/twilio/voice", voice_params(), token="not-the-token")
    assert counts() == (timed + 2, refused + 1)
    assert 'nightdesk_webhook_seconds_count{route="/twilio/voice"}' in client.get("/metrics").text


def test_a_request_without_a_callsid_gets_400_with_the_reason(
    client: TestClient, settings: Settings
) -> None:
    response = post(client, settings, "/twilio/voice", {"From": CALLER, "To": ACME})
    assert response.status_code == 400
    assert response.json() == {"detail": "CallSid is required"}


def test_a_malformed_number_field_gets_400_not_500(client: TestClient, settings: Settings) -> None:
    post(client, settings, "/twilio/voice", voice_params())
    response = post(
        client, settings, "/twilio/voice/step?turn=1",
        voice_params(RecordingUrl="https://r", RecordingDuration="ten"),
    )  # fmt: skip
    assert response.status_code == 400
    assert "RecordingDuration" in response.json()["detail"]


def test_a_step_without_its_turn_gets_a_clear_400(client: TestClient, settings: Settings) -> None:
    response = post(client, settings, "/twilio/voice/step", voice_params(Digits="1"))
    assert response.status_code == 400
    assert "turn" in response.json()["detail"]
    response = post(client, settings, "/twilio/voice/step?turn=two", voice_params(Digits="1"))
    assert response.status_code == 400


def test_twilio_repeating_a_request_gets_the_same_answer_and_no_second_side_effect(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    first = post(client, settings, "/twilio/voice", voice_params())
    again = post(client, settings, "/twilio/voice", voice_params())
    assert first.text == again.text
    step = voice_params(Digits="2", CallStatus="in-progress")
    one = post(client, settings, "/twilio/voice/step?turn=1", step)
    two = post(client, settings, "/twilio/voice/step?turn=1", step)
    assert one.text == two.text
    assert "turn=2" in one.text
    ended = voice_params(CallStatus="completed", CallDuration="30")
    post(client, settings, "/twilio/voice/status", ended)
    ended_at = clock()
    clock.advance(minutes=1)
    post(client, settings, "/twilio/voice/status", ended)
    assert len(all_messages(session_factory)) == 1
    with session_factory() as session:
        call = session.scalars(select(Call)).one()
        kinds = session.scalars(select(CallEvent.kind).where(CallEvent.call_id == call.id))
        assert list(kinds).count("call_ended") == 1
        assert call.ended_at is not None
        assert as_utc(call.ended_at) == ended_at


def test_an_unknown_number_hears_a_polite_message_and_its_voicemail_is_kept(
    phone: Phone, session_factory: sessionmaker[Session]
) -> None:
    call = phone("+441134960999", Say("Hello, is anyone there?"))

    assert "isn't set up to take calls" in call.heard()
    (message,) = all_messages(session_factory)
    assert message.client_id is None
    assert message.outcome == "voicemail"
    assert message.transcription == "Hello, is anyone there?"


def test_the_fallback_url_takes_a_voicemail_that_becomes_a_message_once_stored(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    twiml = post(client, settings, "/twilio/fallback", voice_params()).text
    assert "<Record" in twiml
    assert "called=%2B441134960000" in twiml  # the callbacks carry who was called
    recording = {
        "CallSid": "CA" + "1" * 32,
        "AccountSid": "AC" + "0" * 32,
        "RecordingSid": "RE" + "2" * 32,
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE2",
        "RecordingStatus": "completed",
        "RecordingDuration": "12",
    }
    callback = "/twilio/voice/recording?caller=%2B447911123456&called=%2B441134960000"
    assert post(client, settings, callback, recording).status_code == 204
    (message,) = all_messages(session_factory)
    assert message.outcome == "voicemail"
    assert message.recording_seconds == 12
    assert message.client_id is not None


def test_a_recording_that_arrives_before_the_call_ends_still_lands_on_its_message(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    sid = "CA" + "3" * 32
    post(client, settings, "/twilio/voice", voice_params(sid))
    recording = {
        "CallSid": sid,
        "RecordingSid": "RE" + "4" * 32,
        "RecordingUrl": "https://api.twilio.com/rec/RE4",
        "RecordingDuration": "7",
    }
    post(client, settings, "/twilio/voice/recording", recording)
    post(client, settings, "/twilio/voice/transcription", {**recording, "TranscriptionText": "Hi"})
    post(client, settings, "/twilio/voice/status", voice_params(sid, CallStatus="completed"))
    (message,) = all_messages(session_factory)
    assert message.recording_sid == "RE" + "4" * 32
    assert message.transcription == "Hi"
    assert message.outcome == "voicemail"


def test_a_recording_twilio_sends_again_after_the_call_ended_is_attached_once(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    sid = "CA" + "5" * 32
    post(client, settings, "/twilio/voice", voice_params(sid))
    post(client, settings, "/twilio/voice/status", voice_params(sid, CallStatus="completed"))
    recording = {
        "CallSid": sid,
        "RecordingSid": "RE" + "6" * 32,
        "RecordingUrl": "https://api.twilio.com/rec/RE6",
        "RecordingDuration": "9",
    }
    for _ in range(2):
        assert post(client, settings, "/twilio/voice/recording", recording).status_code == 204

    (message,) = all_messages(session_factory)
    assert (message.recording_sid, message.outcome) == ("RE" + "6" * 32, "voicemail")
    with session_factory() as session:
        kinds = session.scalars(
            select(MessageEvent.kind).where(MessageEvent.message_id == message.id)
        )
        assert list(kinds).count("recording") == 1


def test_when_the_database_is_down_the_caller_still_gets_a_voicemail(
    settings: Settings, clock: FakeClock
) -> None:
    down = settings.model_copy(
        update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:9/nowhere?connect_timeout=1"}
    )
    with TestClient(create_app(down, clock), base_url=settings.public_url) as client:
        response = post(client, settings, "/twilio/voice", voice_params())
        assert response.status_code == 200
        assert "<Record" in response.text
        assert client.get("/readyz").status_code == 503


def test_a_call_in_progress_keeps_its_flow_when_the_file_changes(
    client: TestClient,
    settings: Settings,
    load_client: Callable[[str], None],
    session_factory: sessionmaker[Session],
) -> None:
    version_one = """
        client: tiny
        name: Tiny
        numbers: ["+441134960777"]
        timezone: Europe/London
        steps:
          ask:
            type: ask
            prompt: Your name, please?
            save_as: name
            next: taken
          taken:
            type: take_message
    """
    load_client(version_one)
    sid = "CA" + "5" * 32
    params = voice_params(sid, To="+441134960777")
    assert "Your name, please?" in post(client, settings, "/twilio/voice", params).text
    load_client(
        version_one.replace("Your name, please?", "Who is calling?").replace("  ask:", "  who:")
    )
    after = post(client, settings, "/twilio/voice/step?turn=1", {**params, "SpeechResult": "Kim"})
    assert "Your message has been passed on" in after.text
    (message,) = all_messages(session_factory)
    assert message.answers == {"name": "Kim"}
    fresh = post(
        client, settings, "/twilio/voice", voice_params("CA" + "6" * 32, To="+441134960777")
    )
    assert "Who is calling?" in fresh.text


PA_QUEUE = """
    client: queue-test
    name: Queue Test
    numbers: ["+61255501299"]
    timezone: Australia/Sydney
    steps:
      pa:
        type: queue
        hold_message: Thank you for holding, an assistant will be with you shortly.
        timeout: 60
        on_timeout: voicemail
      voicemail:
        type: record
        prompt: Nobody is free just now. Please leave a message after the tone.
        next: taken
      taken:
        type: take_message
"""


def test_the_pa_queue_plays_hold_music_then_lets_the_caller_leave_a_message(
    phone: Phone, load_client: Callable[[str], None], session_factory: sessionmaker[Session]
) -> None:
    load_client(PA_QUEUE)
    call = phone("+61255501299", Say("Please call me about my lease"), queue="timeout")

    assert "Thank you for holding" in call.heard()
    assert "Nobody is free just now" in call.heard()
    (message,) = all_messages(session_factory)
    assert message.outcome == "message"
    assert message.transcription == "Please call me about my lease"


def test_a_caller_a_pa_picks_up_from_the_queue_counts_as_a_person_reached(
    phone: Phone, load_client: Callable[[str], None], session_factory: sessionmaker[Session]
) -> None:
    load_client(PA_QUEUE)
    phone("+61255501299", queue="bridged")

    (message,) = all_messages(session_factory)
    assert message.outcome == "connected"


def test_metrics_count_calls_and_messages(phone: Phone, client: TestClient) -> None:
    phone(ACME, Press("2"), HangUp())
    metrics = client.get("/metrics").text
    assert 'nightdesk_calls_total{client="acme-plumbing"}' in metrics
    assert "nightdesk_webhook_seconds_bucket" in metrics
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["database"] == "ok"


def test_a_webhook_waits_its_turn_while_another_process_writes_to_sqlite(
    client: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """A `nightdesk` command or a worker holds SQLite's one write lock for a moment: the webhook
    doesn't fail, it waits (off the event loop) and answers once the lock is free."""
    if not settings.is_sqlite:
        pytest.skip("PostgreSQL has no database-wide write lock")
    path = settings.database_url.split("///", 1)[1]
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.commit)
    release.start()
    try:
        started = time.monotonic()
        response = post(client, settings, "/twilio/voice", voice_params())
        waited = time.monotonic() - started
    finally:
        release.join()
        other.close()
    assert response.status_code == 200
    assert "turn=1" in response.text  # the flow's greeting, not the voicemail fallback
    assert waited >= 0.25
    post(client, settings, "/twilio/voice/status", voice_params(CallStatus="completed"))
    assert [m.outcome for m in all_messages(session_factory)] == ["partial"]


def test_a_webhook_whose_work_fails_leaves_the_database_free_for_the_next(
    client: TestClient, settings: Settings
) -> None:
    """A status callback for a delivery we never had fails inside its transaction; the calls
    after it must not find the write lock still taken (they would wait, then hear the
    fallback voicemail)."""
    for _ in range(3):
        unknown = {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered"}
        assert post(client, settings, "/twilio/sms/status?d=999", unknown).status_code == 204
    started = time.monotonic()
    response = post(client, settings, "/twilio/voice", voice_params())
    assert "turn=1" in response.text
    assert time.monotonic() - started < 5
