"""Whatever a signed webhook carries, no Twilio URL answers 500, and any TwiML it answers is XML.

Hypothesis posts plausible Twilio requests with a few fields made hostile (NUL and other control
characters, long strings, numbers too big for a database integer, SIP addresses, nonsense) to
every Twilio URL, signed as Twilio signs them, on both databases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.settings import Settings
from app.telephony.sandbox.signing import signed_post
from tests.calls.conftest import ACME, CALLER

pytestmark = pytest.mark.usefixtures("demo_clients")

ENGINEER = "+441134960501"  # a contact of the demo plumbers: texts from it are replies
# Mostly values known to have broken something somewhere, sometimes anything at all.
HOSTILE = st.one_of(
    st.sampled_from([
        "", "\x00", "my name is\x00 Bob", "\x01\x02\x1b[31m\x7f\x85", "\ufffe\uffff",
        "line\r\nbreak\ttab", "<Say>&amp;</Say>]]>", "x" * 70, "x" * 20_000,
        "99999999999999999999", "2147483648", "9999999999", "-1", "1_000", "١٢", "1e3", " 7",
        "sip:" + "caller" * 60 + "@example.com", "javascript:alert(1)",
    ]),
    st.text(max_size=40),
)  # fmt: skip
# A request Twilio could really send, field by field.
PLAUSIBLE = {
    "CallSid": st.sampled_from(["CA" + "1" * 32, "CA" + "2" * 32, "CA" + "3" * 32]),
    "From": st.sampled_from([CALLER, ENGINEER]),
    "To": st.just(ACME),
    "CallStatus": st.sampled_from(["ringing", "in-progress", "completed", "no-answer"]),
    "Digits": st.sampled_from(["1", "2", "3", "07911123456#"]),
    "SpeechResult": st.sampled_from(["Sam Taylor", "emergency", "oh seven nine one one"]),
    "RecordingUrl": st.just("https://api.twilio.com/2010-04-01/Recordings/RE1"),
    "RecordingSid": st.sampled_from(["RE" + "1" * 32, "RE" + "2" * 32]),
    "RecordingDuration": st.sampled_from(["0", "12", "180"]),
    "TranscriptionText": st.just("Please call me back about the leak."),
    "DialCallStatus": st.sampled_from(["completed", "no-answer", "busy"]),
    "QueueResult": st.sampled_from(["bridged", "hangup", "leave"]),
    "QueueTime": st.sampled_from(["0", "30", "90"]),
    "CallDuration": st.sampled_from(["0", "42"]),
    "MessageSid": st.sampled_from(["SM" + "1" * 32, "SM" + "2" * 32]),
    "MessageStatus": st.sampled_from(["sent", "delivered", "undelivered"]),
    "Body": st.sampled_from(["1", "ACK 1", "STOP", "HELP", "what?"]),
    "ErrorCode": st.sampled_from(["30003", "30008"]),
    "AnsweredBy": st.sampled_from(["human", "machine_start", "fax"]),
    # query parameters
    "turn": st.integers(0, 6).map(str),
    "silence": st.sampled_from(["0", "1"]),
    "d": st.integers(1, 12).map(str),
    "tries": st.sampled_from(["1", "2"]),
    "caller": st.just(CALLER),
    "called": st.just(ACME),
}
VOICE = [
    "CallSid", "From", "To", "CallStatus", "Digits", "SpeechResult", "RecordingUrl",
    "RecordingSid", "RecordingDuration", "TranscriptionText", "DialCallStatus", "QueueResult",
    "QueueTime", "CallDuration",
]  # fmt: skip
NOTIFY = ["CallSid", "CallStatus", "AnsweredBy", "Digits", "ErrorCode"]
# Every Twilio URL: the form fields it reads, and its query parameters.
URLS: dict[str, tuple[list[str], list[str]]] = {
    "/twilio/voice": (VOICE, []),
    "/twilio/voice/step": (VOICE, ["turn", "silence"]),
    "/twilio/voice/hold": (VOICE, []),
    "/twilio/voice/status": (VOICE, []),
    "/twilio/voice/recording": (VOICE, ["caller", "called"]),
    "/twilio/voice/transcription": (VOICE, ["caller", "called"]),
    "/twilio/fallback": (VOICE, []),
    "/twilio/fallback/done": (VOICE, []),
    "/twilio/sms": (["MessageSid", "From", "To", "Body"], []),
    "/twilio/sms/status": (["MessageSid", "MessageStatus", "ErrorCode"], ["d"]),
    "/twilio/notify/voice": (NOTIFY, ["d"]),
    "/twilio/notify/voice/status": (NOTIFY, ["d"]),
    "/twilio/notify/voice/key": (NOTIFY, ["d", "silence", "tries"]),
}


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A URL with its query, and a form: plausible fields, some left out, a few made hostile."""
    url = draw(st.sampled_from(sorted(URLS)))
    fields, parameters = URLS[url]

    def plausible(names: list[str]) -> dict[str, str]:
        left_out = draw(st.sets(st.sampled_from(names), max_size=3))
        kept = {name: draw(PLAUSIBLE[name]) for name in names if name not in left_out}
        hostile = draw(st.dictionaries(st.sampled_from(names), HOSTILE, min_size=1, max_size=3))
        return kept | hostile

    query = plausible(parameters) if parameters else {}
    form = plausible(fields)
    return (f"{url}?{urlencode(query)}" if query else url), form


def is_xml(text: str) -> bool:
    try:
        ET.fromstring(text)  # noqa: S314 - the service's own answer
    except ET.ParseError:
        return False
    return True


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_no_signed_form_makes_a_twilio_url_fail(
    client: TestClient, settings: Settings, request: tuple[str, dict[str, str]]
) -> None:
    path, form = request
    response = signed_post(client, settings.public_url, path, form, settings.twilio_auth_token)

    assert response.status_code < 500, response.text
    if response.headers.get("content-type", "").startswith("application/xml"):
        assert is_xml(response.text), response.text
