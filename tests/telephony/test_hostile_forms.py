"""Whatever a signed webhook carries, no Twilio URL answers 500, and any TwiML it answers is XML.

Hypothesis posts forms with random and hostile values (NUL and other control characters,
megabyte strings, numbers too big for a database integer, SIP addresses, nonsense) to every
Twilio URL, signed as Twilio signs them, on both databases.
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

CALL_SIDS = ["CA" + "1" * 32, "CA" + "2" * 32]
HOSTILE = [
    "",
    " ",
    "\x00",
    "my name is\x00 Bob",
    "\x01\x02\x1b[31m\x7f\x85",
    "\ufffe\uffff",
    "<Say>&amp;</Say>]]>",
    "x" * 70,
    "x" * 20_000,
    "9" * 25,
    "99999999999999999999",
    "2147483648",
    "-1",
    "1_000",
    "١٢",  # Arabic-Indic digits: int() reads them
    "1e3",
    "sip:" + "caller" * 60 + "@example.com",
    "+" + "4" * 40,
    "javascript:alert(1)",
    "completed",
    "in-progress",
    "machine_start",
    "1",
    "#",
]
FIELDS = [
    "CallSid", "From", "To", "CallStatus", "Digits", "SpeechResult", "RecordingUrl",
    "RecordingSid", "RecordingDuration", "TranscriptionText", "DialCallStatus", "QueueResult",
    "QueueTime", "CallDuration", "MessageSid", "MessageStatus", "Body", "ErrorCode",
    "AnsweredBy",
]  # fmt: skip
VALUES = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))
NUMBERS = st.one_of(
    st.sampled_from(["1", "2", "3", "0", "-1", "2147483648", "99999999999999999999", "x", ""]),
    st.integers(min_value=0, max_value=2**31 - 1).map(str),
)
URLS = [
    "/twilio/voice", "/twilio/voice/status", "/twilio/voice/hold", "/twilio/voice/recording",
    "/twilio/voice/transcription", "/twilio/fallback", "/twilio/fallback/done", "/twilio/sms",
]  # fmt: skip
URLS_WITH_A_QUERY = [
    "/twilio/voice/step", "/twilio/voice/recording", "/twilio/voice/transcription",
    "/twilio/sms/status", "/twilio/notify/voice", "/twilio/notify/voice/status",
    "/twilio/notify/voice/key",
]  # fmt: skip
QUERIES = st.dictionaries(
    st.sampled_from(["turn", "silence", "d", "tries", "caller", "called"]),
    st.one_of(NUMBERS, VALUES),
    max_size=3,
)
PATHS = st.one_of(
    st.sampled_from(URLS),
    st.builds("{}?{}".format, st.sampled_from(URLS_WITH_A_QUERY), QUERIES.map(urlencode)),
)


@st.composite
def forms(draw: st.DrawFn) -> dict[str, str]:
    """A plausible voice or SMS webhook, then a few of its fields replaced with anything."""
    form = {
        "CallSid": draw(st.sampled_from(CALL_SIDS)),
        "MessageSid": "SM" + "3" * 32,
        "From": CALLER,
        "To": ACME,
        "CallStatus": draw(st.sampled_from(["ringing", "in-progress", "completed"])),
    }
    form.update(draw(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=6)))
    return form


def is_xml(text: str) -> bool:
    try:
        ET.fromstring(text)  # noqa: S314 - the service's own answer
    except ET.ParseError:
        return False
    return True


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=PATHS, form=forms())
def test_no_signed_form_makes_a_twilio_url_fail(
    client: TestClient, settings: Settings, path: str, form: dict[str, str]
) -> None:
    response = signed_post(client, settings.public_url, path, form, settings.twilio_auth_token)

    assert response.status_code < 500, response.text
    if response.headers.get("content-type", "").startswith("application/xml"):
        assert is_xml(response.text), response.text
