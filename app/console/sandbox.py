"""The console in the sandbox (`nightdesk demo`): the PAs' phones are picked up by a stand-in
who presses 1, so a PA can take a caller from the console with no phone at all."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.telephony.sandbox.conversation import CallerInput, Conversation, Press
from app.telephony.sandbox.fake_resources import CallRecord
from app.telephony.sandbox.fake_twilio import FakeTwilio

CONSOLE_CALLS = "/twilio/console/"


def pa_phone(call: CallRecord) -> list[CallerInput] | None:
    """A call the console places to a PA is answered, and 1 pressed; others are left alone."""
    return [Press("1")] if CONSOLE_CALLS in (call.url or "") else None


def answer_pa_phones(
    sandbox: FakeTwilio,
    app_url: str,
    on_done: Callable[[CallRecord, Conversation], None] | None = None,
) -> None:
    """From now on the sandbox picks up PAs' phones, reaching the app at `app_url`."""
    sandbox.parties.pick_up(pa_phone, httpx.Client(base_url=app_url, timeout=20), on_done)
