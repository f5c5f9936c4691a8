"""The simulated caller, against a tiny fake service that checks every signature as the app does
and answers with scripted TwiML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from app.telephony.sandbox.caller import (
    Conversation,
    HangUp,
    Press,
    Say,
    Silence,
    SimulatedCaller,
    signed_post,
)

PUBLIC_URL = "https://nightdesk.example.com"
TOKEN = "test-auth-token"
ACCOUNT_SID = "AC" + "1" * 32
CALLER = "+447700900123"
OUR_NUMBER = "+442071838750"

Answer = str | int  # TwiML, or an HTTP status to fail with
Handler = Answer | Callable[[dict[str, str]], Answer]


@dataclass
class Hit:
    method: str
    path: str  # with the query
    params: dict[str, str]


@dataclass
class FakeService:
    """Answers each path with its scripted TwiML (empty TwiML for anything else), 403 when the
    X-Twilio-Signature is not Twilio's for the public URL."""

    documents: dict[str, Handler]
    hits: list[Hit] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def webhook(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            query = f"?{request.url.query}" if request.url.query else ""
            url = PUBLIC_URL + request.url.path + query
            signature = request.headers.get("X-Twilio-Signature", "")
            if not RequestValidator(TOKEN).validate(url, form, signature):
                return Response(status_code=403)
            params = form if request.method == "POST" else dict(request.query_params)
            self.hits.append(Hit(request.method, request.url.path + query, params))
            handler = self.documents.get(request.url.path, "<Response/>")
            answer = handler(params) if callable(handler) else handler
            if isinstance(answer, int):
                return Response(status_code=answer)
            return Response(answer, media_type="application/xml")

        return app

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def hit(self, path: str) -> Hit:
        (found,) = [hit for hit in self.hits if hit.path == path]
        return found


def call(
    documents: dict[str, Handler], *script: Any, token: str = TOKEN, **options: Any
) -> tuple[Conversation, FakeService]:
    service = FakeService(documents)
    with TestClient(service.app()) as client:
        caller = SimulatedCaller(
            client,
            public_url=PUBLIC_URL,
            auth_token=token,
            account_sid=ACCOUNT_SID,
            from_number=CALLER,
            to_number=OUR_NUMBER,
            script=script,
            **options,
        )
        return caller.run(), service


def twiml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


MENU = twiml(
    '<Gather action="menu?step=1" input="dtmf speech" numDigits="1">'
    "<Say>Press 1 for an emergency, or tell us what is wrong.</Say></Gather>"
    "<Redirect>/twilio/voice/no-input</Redirect>"
)


def test_every_webhook_is_signed_and_carries_twilios_voice_parameters() -> None:
    conversation, service = call({"/twilio/voice": twiml("<Say>Hello.</Say>")})

    assert conversation.requests == [("/twilio/voice", 200), ("/twilio/voice/status", 200)]
    first, status = service.hits
    assert first.params == {
        "AccountSid": ACCOUNT_SID,
        "CallSid": conversation.call_sid,
        "From": CALLER,
        "To": OUR_NUMBER,
        "Caller": CALLER,
        "Called": OUR_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
        "FromCountry": "GB",
        "ToCountry": "GB",
    }
    assert conversation.call_sid.startswith("CA")
    assert len(conversation.call_sid) == 34
    assert status.params["CallStatus"] == "completed"
    assert status.params["CallDuration"] == "1"


def test_a_webhook_signed_with_the_wrong_token_is_refused_and_ends_the_call() -> None:
    conversation, _ = call({"/twilio/voice": twiml("<Say>Hello.</Say>")}, token="not-the-token")

    assert conversation.requests == [("/twilio/voice", 403), ("/twilio/voice/status", 403)]
    assert "POST /twilio/voice answered HTTP 403; call ends" in conversation.transcript()
    assert "Hello." not in conversation.heard()


def test_signed_post_sends_hand_made_webhooks_and_can_forge_them() -> None:
    service = FakeService({})
    with TestClient(service.app()) as client:
        genuine = signed_post(client, PUBLIC_URL, "/twilio/sms?x=1", {"Body": "ACK"}, TOKEN)
        forged = signed_post(client, PUBLIC_URL, "/twilio/sms?x=1", {"Body": "ACK"}, "guess")

    assert (genuine.status_code, forged.status_code) == (200, 403)
    assert service.hits == [Hit("POST", "/twilio/sms?x=1", {"Body": "ACK"})]


def test_pressed_keys_go_to_the_gather_action_resolved_against_the_document_url() -> None:
    _, service = call({"/twilio/voice": MENU}, Press("1"))

    assert service.paths()[:2] == ["/twilio/voice", "/twilio/menu?step=1"]
    gathered = service.hit("/twilio/menu?step=1").params
    assert (gathered["Digits"], gathered["FinishedOnKey"]) == ("1", "")
    assert gathered["CallStatus"] == "in-progress"


def test_keys_before_the_finish_key_are_sent_with_it() -> None:
    _, service = call({"/twilio/voice": MENU}, Press("42#"))

    gathered = service.hit("/twilio/menu?step=1").params
    assert (gathered["Digits"], gathered["FinishedOnKey"]) == ("42", "#")


def test_speech_is_sent_as_the_speech_result() -> None:
    _, service = call({"/twilio/voice": MENU}, Say("My boiler is leaking"))

    gathered = service.hit("/twilio/menu?step=1").params
    assert (gathered["SpeechResult"], gathered["Confidence"]) == ("My boiler is leaking", "0.9")
    assert "Digits" not in gathered


@pytest.mark.parametrize("script", [[Silence()], []], ids=["silence", "script ran out"])
def test_no_answer_to_a_gather_goes_on_to_the_redirect_after_it(script: list[Any]) -> None:
    _, service = call({"/twilio/voice": MENU}, *script)

    assert service.paths() == ["/twilio/voice", "/twilio/voice/no-input", "/twilio/voice/status"]


def test_keys_pressed_when_only_speech_is_listened_for_count_as_silence() -> None:
    speech_only = twiml(
        '<Gather action="/twilio/answer" input="speech"><Say>What is wrong?</Say></Gather>'
        "<Redirect>/twilio/voice/no-input</Redirect>"
    )
    conversation, service = call({"/twilio/voice": speech_only}, Press("1"))

    assert "/twilio/answer" not in service.paths()
    assert "/twilio/voice/no-input" in service.paths()
    assert "(presses 1) (not listened for)" in conversation.transcript()


def test_a_gather_without_action_posts_back_to_the_current_document() -> None:
    def voice(params: dict[str, str]) -> str:
        if "Digits" in params:
            return twiml(f"<Say>You pressed {params['Digits']}.</Say>")
        return twiml("<Gather><Say>Press a key.</Say></Gather>")

    conversation, service = call({"/twilio/voice": voice}, Press("7"))

    assert service.paths() == ["/twilio/voice", "/twilio/voice", "/twilio/voice/status"]
    assert "You pressed 7." in conversation.heard()


def test_action_on_empty_result_posts_the_action_without_input() -> None:
    gather = twiml('<Gather action="/twilio/answer" actionOnEmptyResult="true"/>')
    _, service = call({"/twilio/voice": gather}, Silence())

    assert "Digits" not in service.hit("/twilio/answer").params


def test_hanging_up_during_a_gather_ends_the_call_without_the_action() -> None:
    conversation, service = call({"/twilio/voice": MENU}, HangUp())

    assert service.paths() == ["/twilio/voice", "/twilio/voice/status"]
    assert conversation.lines[-2].text == "(hangs up)"


def test_redirect_follows_relative_urls_and_the_get_method() -> None:
    documents: dict[str, Handler] = {
        "/twilio/voice": twiml('<Redirect method="GET">next?from=start</Redirect>'),
        "/twilio/next": twiml("<Say>Here.</Say>"),
    }
    _, service = call(documents)

    followed = service.hits[1]
    assert (followed.method, followed.path.split("&")[0]) == ("GET", "/twilio/next?from=start")
    assert followed.params["CallStatus"] == "in-progress"


VOICEMAIL = twiml(
    "<Say>Leave a message after the tone.</Say>"
    '<Record action="/twilio/recorded" maxLength="120" recordingStatusCallback="/twilio/recording"'
    ' transcribe="true" transcribeCallback="/twilio/transcription"/>'
    "<Say>We did not get a message.</Say>"
)
RECORDED = twiml("<Say>Thank you, goodbye.</Say><Hangup/>")


def test_a_voicemail_posts_the_action_then_the_recording_and_transcription_callbacks() -> None:
    message = "My boiler is leaking into the kitchen"
    conversation, service = call(
        {"/twilio/voice": VOICEMAIL, "/twilio/recorded": RECORDED}, Say(message)
    )

    assert service.paths() == [
        "/twilio/voice",
        "/twilio/recorded",
        "/twilio/recording",
        "/twilio/transcription",
        "/twilio/voice/status",
    ]
    action, recording, transcription = service.hits[1:4]
    sid = action.params["RecordingSid"]
    assert action.params["RecordingUrl"] == (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{sid}"
    )
    assert action.params["RecordingDuration"] == "3"  # seven words at two a second
    assert "Digits" not in action.params  # ended by silence
    assert recording.params == {
        "AccountSid": ACCOUNT_SID,
        "CallSid": conversation.call_sid,
        "RecordingSid": sid,
        "RecordingUrl": action.params["RecordingUrl"],
        "RecordingStatus": "completed",
        "RecordingDuration": "3",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }
    assert transcription.params["TranscriptionText"] == message
    assert transcription.params["TranscriptionStatus"] == "completed"
    assert transcription.params["TranscriptionSid"].startswith("TR")
    assert transcription.params["RecordingSid"] == sid
    assert "Thank you, goodbye." in conversation.heard()


def test_a_silent_voicemail_skips_the_action_and_goes_on_with_the_next_verb() -> None:
    conversation, service = call({"/twilio/voice": VOICEMAIL}, Silence())

    assert service.paths() == ["/twilio/voice", "/twilio/voice/status"]
    assert conversation.heard().endswith("We did not get a message.")


def test_a_caller_who_hangs_up_after_the_message_still_has_it_posted_but_hears_no_more() -> None:
    documents: dict[str, Handler] = {
        "/twilio/voice": VOICEMAIL,
        "/twilio/recorded": twiml("<Redirect>/twilio/never</Redirect>"),
    }
    _, service = call(documents, Say("Call me back"), HangUp())

    action = service.hit("/twilio/recorded").params
    assert (action["Digits"], action["CallStatus"]) == ("hangup", "completed")
    assert "/twilio/never" not in service.paths()
    assert service.paths()[-3:] == [
        "/twilio/recording",
        "/twilio/transcription",
        "/twilio/voice/status",
    ]


def test_a_finish_key_ends_the_recording_and_is_sent_as_digits() -> None:
    documents: dict[str, Handler] = {"/twilio/voice": VOICEMAIL, "/twilio/recorded": RECORDED}
    _, service = call(documents, Say("Call me back"), Press("#"))

    assert service.hit("/twilio/recorded").params["Digits"] == "#"


DIAL = twiml(
    "<Say>Putting you through.</Say>"
    '<Dial action="/twilio/dialled" timeout="20"><Number>+447700900456</Number></Dial>'
)


@pytest.mark.parametrize(
    ("transfers", "status", "duration"),
    [("answer", "completed", "42"), ("no-answer", "no-answer", None), ("busy", "busy", None)],
)
def test_a_transfer_reports_its_outcome_to_the_dial_action(
    transfers: str, status: str, duration: str | None
) -> None:
    conversation, service = call({"/twilio/voice": DIAL}, transfers=transfers)

    dialled = service.hit("/twilio/dialled").params
    assert dialled["DialCallStatus"] == status
    assert dialled.get("DialCallDuration") == duration
    assert dialled["DialCallSid"].startswith("CA")
    assert "(dialling +447700900456)" in conversation.heard()


def test_a_transfer_without_an_action_goes_on_with_the_next_verb() -> None:
    dial = twiml("<Dial>+447700900456</Dial><Say>Nobody answered.</Say>")
    conversation, _ = call({"/twilio/voice": dial})

    assert conversation.heard().endswith("Nobody answered.")


QUEUE = twiml('<Enqueue waitUrl="/twilio/hold" action="/twilio/dequeued">night-pa</Enqueue>')


def hold_until(seconds: int) -> Callable[[dict[str, str]], str]:
    def hold(params: dict[str, str]) -> str:
        if int(params["QueueTime"]) >= seconds:
            return twiml("<Say>Nobody is free.</Say><Leave/>")
        return twiml("<Say>Please hold.</Say>")

    return hold


def test_hold_music_repeats_until_it_says_leave_then_the_enqueue_action_is_requested() -> None:
    documents: dict[str, Handler] = {
        "/twilio/voice": QUEUE,
        "/twilio/hold": hold_until(60),
        "/twilio/dequeued": twiml("<Say>Please leave a message.</Say>"),
    }
    conversation, service = call(documents)

    holds = [hit.params for hit in service.hits if hit.path == "/twilio/hold"]
    assert [params["QueueTime"] for params in holds] == ["0", "30", "60"]
    dequeued = service.hit("/twilio/dequeued").params
    assert (dequeued["QueueResult"], dequeued["QueueTime"]) == ("leave", "60")
    assert dequeued["QueueSid"] == holds[0]["QueueSid"]
    assert conversation.heard().count("Please hold.") == 2
    assert conversation.heard().endswith("Please leave a message.")


def test_a_pa_picking_up_bridges_the_call_on_the_first_round() -> None:
    documents: dict[str, Handler] = {"/twilio/voice": QUEUE, "/twilio/hold": hold_until(60)}
    _, service = call(documents, queue="bridged")

    assert service.paths().count("/twilio/hold") == 1
    assert service.hit("/twilio/dequeued").params["QueueResult"] == "bridged"


def test_a_caller_held_too_long_hangs_up_and_the_action_hears_of_it() -> None:
    documents: dict[str, Handler] = {
        "/twilio/voice": QUEUE,
        "/twilio/hold": hold_until(10_000),
        "/twilio/dequeued": twiml("<Redirect>/twilio/never</Redirect>"),
    }
    _, service = call(documents, max_queue_rounds=3)

    assert service.paths().count("/twilio/hold") == 3
    dequeued = service.hit("/twilio/dequeued").params
    assert (dequeued["QueueResult"], dequeued["CallStatus"]) == ("hangup", "completed")
    assert "/twilio/never" not in service.paths()


def test_the_transcript_reads_as_the_conversation() -> None:
    documents: dict[str, Handler] = {
        "/twilio/voice": MENU,
        "/twilio/menu": twiml(
            "<Say>Please describe the problem after the tone.</Say>"
            '<Record action="/twilio/recorded" maxLength="120"/>'
        ),
        "/twilio/recorded": RECORDED,
    }
    conversation, _ = call(documents, Press("1"), Say("My boiler is leaking"))

    assert conversation.transcript() == (
        "nightdesk: Press 1 for an emergency, or tell us what is wrong.\n"
        "caller:    (presses 1)\n"
        "nightdesk: Please describe the problem after the tone.\n"
        "nightdesk: (recording, up to 120 s)\n"
        'caller:    "My boiler is leaking"\n'
        "nightdesk: Thank you, goodbye.\n"
        "system:    call ended"
    )


def test_a_server_error_ends_the_call() -> None:
    conversation, _ = call({"/twilio/voice": MENU, "/twilio/menu": 500}, Press("1"))

    assert conversation.requests == [
        ("/twilio/voice", 200),
        ("/twilio/menu?step=1", 500),
        ("/twilio/voice/status", 200),
    ]
    assert conversation.lines[-2].text == "POST /twilio/menu?step=1 answered HTTP 500; call ends"


def test_a_document_that_is_not_twiml_ends_the_call() -> None:
    conversation, _ = call({"/twilio/voice": "OK"})

    assert "returned no usable TwiML" in conversation.transcript()


def test_a_flow_that_loops_is_stopped_after_max_turns() -> None:
    conversation, service = call({"/twilio/voice": twiml("<Redirect/>")}, max_turns=5)

    assert service.paths().count("/twilio/voice") == 5
    assert "stopped after 5 webhooks" in conversation.transcript()


def test_a_rejected_call_ends_busy_without_being_answered() -> None:
    _, service = call({"/twilio/voice": twiml('<Reject reason="busy"/>')})

    status = service.hit("/twilio/voice/status").params
    assert (status["CallStatus"], status["CallDuration"]) == ("busy", "0")


def test_a_caller_plays_one_call_only() -> None:
    service = FakeService({})
    with TestClient(service.app()) as client:
        caller = SimulatedCaller(
            client,
            public_url=PUBLIC_URL,
            auth_token=TOKEN,
            account_sid=ACCOUNT_SID,
            from_number=CALLER,
            to_number=OUR_NUMBER,
        )
        caller.run()
        with pytest.raises(RuntimeError):
            caller.run()
