"""The PA's browser phone: answering in the browser with Twilio's Voice JavaScript SDK
(@twilio/voice-sdk, from npm at install time, served by the app from node_modules), or, in
development and the sandbox, a stand-in with the same `Device.connect` shape that has the
fake Twilio place the PA's leg, so the demo works with no Twilio at all.

When neither is possible (real Twilio without the three settings, or without the SDK file) the
browser option is hidden and PAs answer on their own phones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from app.settings import DEFAULT_TWILIO_API_BASE, Settings

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "node_modules" / "@twilio" / "voice-sdk" / "dist" / "twilio.min.js"
SANDBOX_SDK = Path(__file__).resolve().parent / "voice_sandbox.js"  # the stand-in
TOKEN_SECONDS = 3600  # a PA's console page asks again when it places a call


class Mode(StrEnum):
    twilio = "twilio"  # the real SDK, served from node_modules
    sandbox = "sandbox"  # the stand-in: the fake Twilio places the PA's leg


@dataclass(frozen=True)
class BrowserPhone:
    mode: Mode
    account_sid: str
    api_key_sid: str = ""
    api_key_secret: str = ""
    twiml_app_sid: str = ""
    sdk: Path = SDK

    def token(self, identity: str) -> str:
        """An access token for this PA's browser: it may place calls through the TwiML App
        (whose Voice URL is /twilio/console/browser), and receive none."""
        if self.mode is Mode.sandbox:
            return "sandbox"
        token = AccessToken(
            self.account_sid, self.api_key_sid, self.api_key_secret, identity=identity,
            ttl=TOKEN_SECONDS,
        )  # fmt: skip
        token.add_grant(VoiceGrant(outgoing_application_sid=self.twiml_app_sid))
        return str(token.to_jwt())


def identity_of(user_id: int) -> str:
    """The PA's browser as Twilio names it (`client:pa-7` in webhooks)."""
    return f"pa-{user_id}"


def browser_phone_for(settings: Settings, sdk: Path = SDK) -> BrowserPhone | None:
    """What answering in the browser can use with these settings, or None: hidden."""
    if settings.wants_twilio_sandbox or settings.twilio_api_base != DEFAULT_TWILIO_API_BASE:
        return BrowserPhone(Mode.sandbox, settings.twilio_account_sid)  # the real SDK needs Twilio
    configured = all(
        (settings.twilio_api_key_sid, settings.twilio_api_key_secret, settings.twilio_twiml_app_sid)
    )
    if not configured or not sdk.is_file():
        return None
    return BrowserPhone(
        Mode.twilio, settings.twilio_account_sid, settings.twilio_api_key_sid,
        settings.twilio_api_key_secret, settings.twilio_twiml_app_sid, sdk,
    )  # fmt: skip
