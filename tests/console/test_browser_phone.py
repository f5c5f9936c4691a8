"""Answering in the browser: an access token from twilio.jwt for the PA's browser, Twilio's
Voice SDK served by the app (or hidden), and the browser's leg (placed by the sandbox's
stand-in here, as Twilio places a TwiML App's call) joining the caller's conference."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.console.browser import SDK, BrowserPhone, Mode, browser_phone_for
from app.settings import DEFAULT_TWILIO_API_BASE, Settings
from app.telephony.sandbox.caller import Press
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.signing import signed_post
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.console.conftest import (
    HARBOUR_LAW,
    AddPa,
    Ring,
    entry_of,
    pa_phones_pick_up,
    wait_for_entry,
)

ACCOUNT = "AC" + "1" * 32
KEY_SID, KEY_SECRET, APP_SID = "SK" + "2" * 32, "k" * 32, "AP" + "3" * 32


def real_twilio(settings: Settings, **changes: object) -> Settings:
    return settings.model_copy(
        update={
            "twilio_api_base": DEFAULT_TWILIO_API_BASE, "twilio_account_sid": ACCOUNT,
            "sandbox": "off", "twilio_api_key_sid": KEY_SID,
            "twilio_api_key_secret": KEY_SECRET, "twilio_twiml_app_sid": APP_SID, **changes,
        }
    )  # fmt: skip


def test_with_twilio_the_pas_browser_gets_a_token_to_place_calls_through_the_twiml_app(
    settings: Settings, tmp_path: Path
) -> None:
    sdk = tmp_path / "twilio.min.js"
    sdk.write_text("// the SDK")
    phone = browser_phone_for(real_twilio(settings), sdk)
    assert phone is not None
    assert phone.mode is Mode.twilio

    claims = jwt.decode(phone.token("pa-7"), KEY_SECRET, algorithms=["HS256"])

    assert (claims["iss"], claims["sub"]) == (KEY_SID, ACCOUNT)
    assert claims["grants"]["identity"] == "pa-7"
    assert claims["grants"]["voice"]["outgoing"] == {"application_sid": APP_SID}
    assert "incoming" not in claims["grants"]["voice"]


def test_without_the_settings_or_the_sdk_file_the_browser_option_is_hidden(
    settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "none.js"
    assert browser_phone_for(real_twilio(settings), missing) is None
    assert browser_phone_for(real_twilio(settings, twilio_twiml_app_sid=""), missing) is None


def test_against_a_fake_twilio_the_sandbox_stand_in_answers(settings: Settings) -> None:
    phone = browser_phone_for(settings)
    assert phone is not None
    assert phone.mode is Mode.sandbox


def test_a_pa_without_a_phone_answers_in_the_browser_and_the_caller_is_moved_in(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    pa_phones_pick_up(fake_twilio, console_client, Press("1"))
    pa = add_pa(phone=None)
    caller = ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")
    assert "in the browser" in pa.page("/console").text

    taken = pa.press(f"/console/queue/{entry.id}/take", answer="browser")
    assert taken.headers["location"] == f"/console/calls/{entry.id}?answer=browser"
    page = pa.page(taken.headers["location"])
    assert 'data-connect="yes"' in page.text
    assert "/console/voice-sdk.js" in page.text
    assert pa.page("/console/voice-sdk.js").text.startswith("// Nightdesk's sandbox stand-in")
    assert pa.page("/console/voice-token").json() == {
        "token": "sandbox",
        "identity": f"pa-{pa.user_id}",
    }
    connected = pa.press(f"/console/calls/{entry.id}/sandbox-connect", offer="1")

    assert connected.status_code == 200
    fake_twilio.wait_for(lambda: entry_of(session_factory, entry.id).status == "answered")
    [leg] = [c for c in fake_twilio.calls if c.to == f"client:pa-{pa.user_id}"]
    fake_twilio.wait_for(
        lambda: (
            set(fake_twilio.lines.seats(f"nightdesk-entry-{entry.id}"))
            == {leg.sid, caller.call_sid}
        )
    )


def test_a_browser_call_from_another_pa_is_not_put_through(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    pa = add_pa(phone=None)
    ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")
    pa.press(f"/console/queue/{entry.id}/take", answer="browser")
    form = {"CallSid": "CA" + "9" * 32, "From": "client:pa-999", "entry": str(entry.id),
            "offer": "1", "AccountSid": ACCOUNT}  # fmt: skip

    answer = signed_post(console_client, PUBLIC_URL, "/twilio/console/browser", form, AUTH_TOKEN)

    assert "no longer waiting" in answer.text
    assert entry_of(session_factory, entry.id).pa_call_sid is None
    other = add_pa("ana@nightdesk.test", name="Ana Lima", phone=None)
    other.press(f"/console/calls/{entry.id}/give-back", offer="1")
    assert entry_of(session_factory, entry.id).status == "offered", "not theirs to give back"
    given_back = pa.press(f"/console/calls/{entry.id}/give-back", offer="1")
    assert given_back.headers["location"] == "/console?problem=phone"
    assert entry_of(session_factory, entry.id).status == "waiting"


def test_with_twilio_the_app_serves_the_npm_sdk_and_puts_a_twiml_app_call_through(
    app: FastAPI,
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> None:
    if not SDK.is_file():
        pytest.fail("@twilio/voice-sdk is missing: run `npm ci` (scripts/test does)")
    app.state.console.browser = BrowserPhone(
        Mode.twilio, ACCOUNT, KEY_SID, KEY_SECRET, APP_SID, SDK
    )
    pa = add_pa(phone=None)
    ring(HARBOUR_LAW, Press("0"))
    (entry,) = wait_for_entry(fake_twilio, session_factory, "waiting")
    pa.press(f"/console/queue/{entry.id}/take", answer="browser")

    sdk = pa.page("/console/voice-sdk.js")
    grant = pa.page("/console/voice-token").json()
    # Twilio's request for the TwiML App's Voice URL: Device.connect's params as form fields.
    placed = {"CallSid": "CA" + "4" * 32, "From": f"client:pa-{pa.user_id}", "To": "",
              "entry": str(entry.id), "offer": "1", "AccountSid": ACCOUNT}  # fmt: skip
    answer = signed_post(console_client, PUBLIC_URL, "/twilio/console/browser", placed, AUTH_TOKEN)

    assert sdk.headers["content-type"].startswith("text/javascript")
    assert sdk.content == SDK.read_bytes()
    assert jwt.decode(grant["token"], KEY_SECRET, algorithms=["HS256"])["sub"] == ACCOUNT
    assert "<Conference" in answer.text
    assert f"nightdesk-entry-{entry.id}" in answer.text
    assert entry_of(session_factory, entry.id).pa_call_sid == "CA" + "4" * 32
