"""Fixtures for the caller's side: a phone to call the clients with."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from app.telephony.sandbox.caller import Conversation, HangUp, Press, Say, Silence, SimulatedCaller

CallerInput = Press | Say | Silence | HangUp

CALLER = "+447911123456"
ACME = "+441134960000"

Phone = Callable[..., Conversation]


@pytest.fixture
def phone(client: TestClient, settings: Settings) -> Phone:
    """Ring a number as a caller would, through Twilio's signed webhooks."""

    def ring(to: str, *script: CallerInput, **options: object) -> Conversation:
        return SimulatedCaller(
            client,
            public_url=settings.public_url,
            auth_token=settings.twilio_auth_token,
            account_sid=settings.twilio_account_sid,
            from_number=str(options.pop("from_number", CALLER)),
            to_number=to,
            script=script,
            **options,  # type: ignore[arg-type]
        ).run()

    return ring
