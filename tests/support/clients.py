"""Two client businesses side by side, their messages saved as calls save them, and their keys:
what the portal and API tests need to show that each client sees its own and nothing else."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.service import create_api_key
from app.calls.models import Call, CallEvent
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import transaction
from app.dispatch.outbox import take_message
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.messages.models import Message
from app.messages.service import recording_fields
from app.webhooks.destinations import Destination
from app.webhooks.models import WebhookEndpoint
from app.webhooks.service import add_endpoint
from tests.clock import FakeClock

HARBOUR = """
    client: harbour-plumbing
    name: Harbour Plumbing
    numbers: ["+441134960800"]
    timezone: Europe/London
    contacts:
      - {id: sam, name: Sam Taylor, phone: "+441134960801", channels: [sms]}
      - {id: alex, name: Alex Reed, phone: "+441134960802", email: alex@harbour.test,
         channels: [sms]}
    rotation:
      members: [sam, alex]
      handoff: "09:00"
      shift: weekly
      starts: 2026-01-05
    escalation:
      steps:
        - {notify: on_call, wait_minutes: 10}
        - {notify: everyone, wait_minutes: 10}
    steps:
      take: {type: take_message}
"""
BRIGHT = """
    client: bright-dental
    name: Bright Dental
    numbers: ["+12025550100"]
    timezone: America/New_York
    caller_updates: false
    contacts:
      - {id: dee, name: Dee Walker, phone: "+12025550101", channels: [sms]}
    escalation:
      steps:
        - {notify: dee, wait_minutes: 15}
    steps:
      take: {type: take_message}
"""
HARBOUR_CALLER = "+447700123456"  # callers whose numbers must never show up at the other client
BRIGHT_CALLER = "+12025550199"


@dataclass
class Clients:
    """The tests' hands: leave messages for a client, make its API keys, look at rows."""

    sessions: sessionmaker[Session]
    clock: FakeClock
    _sids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def leave_message(
        self,
        client: str,
        urgency: Urgency = Urgency.routine,
        *,
        caller: str | None = None,
        transcription: str | None = None,
        recording_url: str | None = None,
        **answers: str,
    ) -> int:
        """A message as a call to the client's number saves it, at the clock's time: its
        escalation started and its first notifications owed."""
        caller = caller or (HARBOUR_CALLER if client == "harbour-plumbing" else BRIGHT_CALLER)
        now = self.clock()
        with transaction(self.sessions) as session:
            row = session.scalars(select(Client).where(Client.slug == client)).one()
            assert row.active_flow_id is not None
            flow = FlowStore().get(session, row.active_flow_id)
            call = Call(
                sid=f"CA{next(self._sids):032d}", client_id=row.id,
                flow_version_id=row.active_flow_id, caller=caller, called=flow.numbers[0],
                state={}, started_at=now,
            )  # fmt: skip
            session.add(call)
            session.flush()
            step = {"step": "take", "type": "take_message"}
            session.add(CallEvent(call_id=call.id, kind="step", at=now, detail=step))
            attachments: dict[str, Any] = {}
            if recording_url:
                sid = recording_url.rsplit("/", 1)[-1]
                recording = {"sid": sid, "url": recording_url, "seconds": 12}
                session.add(CallEvent(call_id=call.id, kind="recording", at=now, detail=recording))
                attachments.update(recording_fields(recording))
            if transcription:
                attachments["transcription"] = transcription
            save = SaveMessage(urgency=urgency, answers=dict(answers), outcome="message")
            message = take_message(session, call, flow, save, attachments, now)
            assert message is not None
            return message.id

    def api_key(self, client: str) -> str:
        """A new key for the client, as `nightdesk api-keys create` makes one."""
        with transaction(self.sessions) as session:
            return create_api_key(session, client, "tests", self.clock())[1]

    def webhook(self, client: str, url: str) -> int:
        """An endpoint for the client, as if `url`'s host had resolved to a public address."""
        checked = Destination(url, urlsplit(url).hostname or "", ip_address("93.184.216.34"))
        with transaction(self.sessions) as session:
            return add_endpoint(session, client, checked, [], self.clock())[0]

    def webhook_ids(self, client: str) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(WebhookEndpoint.id)
                    .join(Client, Client.id == WebhookEndpoint.client_id)
                    .where(Client.slug == client)
                    .order_by(WebhookEndpoint.id)
                )
            )

    def call_sid(self, message_id: int) -> str:
        """The CallSid of the call the message was taken on."""
        with self.sessions() as session:
            return session.scalars(
                select(Call.sid)
                .join(Message, Message.call_id == Call.id)
                .where(Message.id == message_id)
            ).one()

    def message(self, message_id: int) -> Message:
        with self.sessions() as session:
            found = session.get(Message, message_id)
            assert found is not None
            return found


@pytest.fixture
def clients(
    load_client: Callable[[str], None], session_factory: sessionmaker[Session], clock: FakeClock
) -> Clients:
    """Harbour Plumbing (London, a rotation) and Bright Dental (New York), with no messages yet."""
    load_client(HARBOUR)
    load_client(BRIGHT)
    return Clients(session_factory, clock)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
