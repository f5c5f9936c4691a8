"""A client that wants a morning summary, messages left overnight through the real services,
the dispatcher run by hand under the test's clock, and a real SMTP server that receives the mail.
Texts to the on-call contact go to the fake Twilio; its status callbacks go nowhere.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.acks.service import acknowledge
from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import Database, make_database, transaction
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.links import Links
from app.dispatch.outbox import take_message
from app.dispatch.senders import make_senders
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.settings import Settings
from app.summaries.dispatcher import add_summaries
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.support.smtp import SmtpInbox

ACME = """
    client: acme-plumbing
    name: Acme Plumbing
    numbers: ["+441134960700"]
    timezone: Europe/London
    caller_updates: false
    hours:
      monday: ["08:00-17:30"]
      tuesday: ["08:00-17:30"]
      wednesday: ["08:00-17:30"]
      thursday: ["08:00-17:30"]
      friday: ["08:00-17:30"]
    contacts:
      - {id: sam, name: Sam Taylor, phone: "+441134960701", channels: [sms]}
      - {id: olive, name: Olive Owner, email: olive@acme.example, channels: [email]}
    escalation:
      steps: [{notify: sam, wait_minutes: 10}]
      repeat: 0
    summary:
      recipients: [olive, accounts@acme.example]
    steps:
      take: {type: take_message}
"""
BROOKLYN = """
    client: brooklyn-boilers
    name: Brooklyn Boilers
    numbers: ["+12125550100"]
    timezone: America/New_York
    caller_updates: false
    contacts:
      - {id: rosa, name: Rosa Diaz, phone: "+12125550101", email: rosa@brooklyn.example,
         channels: [sms]}
    escalation:
      steps: [{notify: rosa, wait_minutes: 10}]
      repeat: 0
    summary:
      at: "07:30"
      recipients: [rosa]
    steps:
      take: {type: take_message}
"""
OLIVE, ACCOUNTS, ROSA = "olive@acme.example", "accounts@acme.example", "rosa@brooklyn.example"


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as smtp:
        yield smtp


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        deliver=lambda url, params, headers: None,
    ) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, inbox: SmtpInbox) -> Settings:
    return settings.model_copy(update={"smtp_url": inbox.url})


@pytest.fixture
def twilio_settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})


@dataclass
class Night:
    """The tests' hands: leave messages at given times, acknowledge them, run dispatchers."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: FakeClock
    database: Database
    _sids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def dispatcher(self, database: Database | None = None) -> Dispatcher:
        """A dispatcher as `nightdesk worker` builds one; another `database` is another process."""
        return add_summaries(
            Dispatcher(
                database=database or self.database,
                flows=FlowStore(),
                senders=make_senders(self.settings),
                links=Links(self.settings.public_url, self.settings.secret_key, self.clock),
                clock=self.clock,
            )
        )

    def another_process(self) -> Dispatcher:
        return self.dispatcher(make_database(self.settings.database_url))

    def message(
        self,
        at: dt.datetime,
        client: str = "acme-plumbing",
        urgency: Urgency = Urgency.routine,
        transcription: str | None = None,
        **answers: str,
    ) -> int:
        """A message as a call saves it at `at`, its notifications queued."""
        at = self.clock.set(at)  # in UTC, as the app's clock gives it
        with transaction(self.sessions) as session:
            row = session.scalars(select(Client).where(Client.slug == client)).one()
            assert row.active_flow_id is not None
            flow = FlowStore().get(session, row.active_flow_id)
            call = Call(
                sid=f"CA{next(self._sids):032d}",
                client_id=row.id,
                caller=answers.pop("caller", "+441134960999"),
                called=flow.numbers[0],
                flow_version_id=row.active_flow_id,
                state={},
                started_at=at,
            )
            session.add(call)
            session.flush()
            save = SaveMessage(urgency=urgency, answers=dict(answers), outcome="message")
            extra = {"transcription": transcription} if transcription else {}
            message = take_message(session, call, flow, save, extra, at)
            assert message is not None
            return message.id

    def acknowledge(self, message_id: int, by: str, at: dt.datetime) -> None:
        at = self.clock.set(at)
        with transaction(self.sessions) as session:
            acknowledge(session, FlowStore(), message_id, by=by, via="sms", now=at)


@pytest.fixture
def night(
    app: FastAPI,
    twilio_settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    load_client: Callable[[str], None],
) -> Night:
    load_client(ACME)
    load_client(BROOKLYN)
    return Night(twilio_settings, session_factory, clock, app.state.database)


def text_of(email: EmailMessage) -> str:
    part = email.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(email: EmailMessage) -> str:
    part = email.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def to(inbox: SmtpInbox, address: str) -> list[EmailMessage]:
    return [m for m in inbox.messages if m["To"] == address]


LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")


def wall(zone: ZoneInfo, text: str) -> dt.datetime:
    """A wall-clock time in `zone` ("2026-11-26 08:00") as an aware instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)
