"""A client whose own system takes Nightdesk's events: a receiver on loopback, endpoints added
as an operator adds them, messages saved and acknowledged through the real services, and the
dispatcher as `nightdesk worker` builds it, run by hand under the test's clock."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from app.acks.service import acknowledge
from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import Database, transaction
from app.dispatch.dispatcher import Dispatcher, make_dispatcher
from app.dispatch.outbox import take_message
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.webhooks.destinations import destination
from app.webhooks.sending import SendWebhooks
from app.webhooks.service import add_endpoint
from tests.clock import FakeClock
from tests.support.receiver import Received, WebhookReceiver
from tests.support.smtp import SmtpInbox

ACME = """
    client: acme-plumbing
    name: Acme Plumbing
    numbers: ["+441134960700"]
    timezone: Europe/London
    caller_updates: false
    contacts:
      - {id: sam, name: Sam Taylor, phone: "+441134960701", channels: [sms]}
      - {id: olive, name: Olive Owner, email: olive@acme.example, channels: [email]}
    escalation:
      steps: [{notify: sam, wait_minutes: 10}]
      repeat: 0
    summary:
      at: "08:00"
      recipients: [olive]
    steps:
      take: {type: take_message}
"""
OLIVE = "olive@acme.example"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as smtp:
        yield smtp


@pytest.fixture
def settings(settings: Settings, inbox: SmtpInbox) -> Settings:
    return settings.model_copy(update={"smtp_url": inbox.url})


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        deliver=lambda url, params, headers: None,
    ) as fake:
        yield fake


@dataclass
class Hooks:
    """The tests' hands: add endpoints, save and acknowledge messages, run the dispatcher."""

    sessions: sessionmaker[Session]
    clock: FakeClock
    dispatcher: Dispatcher
    calls: int = 0

    def add(self, url: str, *events: str) -> tuple[int, str]:
        with transaction(self.sessions) as session:
            checked = destination(url, local_ok=True)  # the receiver is on loopback
            return add_endpoint(session, "acme-plumbing", checked, events, self.clock())

    def message(self, urgency: Urgency = Urgency.urgent, **answers: Any) -> int:
        self.calls += 1
        with transaction(self.sessions) as session:
            client = session.scalars(select(Client).where(Client.slug == "acme-plumbing")).one()
            assert client.active_flow_id is not None
            flow = FlowStore().get(session, client.active_flow_id)
            call = Call(
                sid=f"CA{self.calls:032d}",
                client_id=client.id,
                caller="+441134960999",
                called=flow.numbers[0],
                flow_version_id=client.active_flow_id,
                state={},
                started_at=self.clock(),
            )
            session.add(call)
            session.flush()
            save = SaveMessage(
                urgency=urgency, answers=answers or {"name": "Jo"}, outcome="message"
            )
            message = take_message(session, call, flow, save, {}, self.clock())
            assert message is not None
            return message.id

    def acknowledge(self, message_id: int, by: str = "Sam Taylor") -> None:
        with transaction(self.sessions) as session:
            acknowledge(session, FlowStore(), message_id, by=by, via="sms", now=self.clock())

    def run(self) -> int:
        """The dispatcher's next look for events owed: it looks at most every
        `SendWebhooks.every`."""
        self.clock.advance(seconds=SendWebhooks.every.total_seconds())
        return self.dispatcher.run_once()


@pytest.fixture
def hooks(
    app: FastAPI,
    settings: Settings,
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    load_client: Callable[[str], None],
) -> Hooks:
    load_client(ACME)
    sending = settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})
    database: Database = app.state.database
    return Hooks(session_factory, clock, make_dispatcher(sending, database, FlowStore(), clock))


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The event, once the receiver's Standard Webhooks library has checked our signature."""
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    assert payload == json.loads(request.body)
    return payload


def real_now() -> dt.datetime:
    """Receivers check the signed timestamp against their own clock (5 minutes either way)."""
    return dt.datetime.now(dt.UTC)
