"""Fixtures for the caller's side: clients loaded from flow files, and a phone to call them with."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import sync_flows
from app.db import transaction
from app.flows.loader import load_flows, parse_flow
from app.settings import Settings
from app.telephony.sandbox.caller import Conversation, HangUp, Press, Say, Silence, SimulatedCaller

CallerInput = Press | Say | Silence | HangUp

ROOT = Path(__file__).resolve().parents[2]
CALLER = "+447911123456"
ACME = "+441134960000"

Phone = Callable[..., Conversation]


@pytest.fixture
def demo_clients(session_factory: sessionmaker[Session]) -> None:
    """The three demo clients from voice_flows/, as `nightdesk demo` loads them."""
    loaded, problems = load_flows([ROOT / "voice_flows"])
    assert not problems
    with transaction(session_factory) as session:
        sync_flows(session, loaded)


@pytest.fixture
def load_client(session_factory: sessionmaker[Session]) -> Callable[[str], None]:
    """Load a client from a YAML snippet, as `nightdesk flows sync` would."""

    def load(snippet: str) -> None:
        loaded = parse_flow(textwrap.dedent(snippet), "test.yaml")
        with transaction(session_factory) as session:
            sync_flows(session, [loaded])

    return load


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
