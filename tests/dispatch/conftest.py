"""A client with three contacts, messages saved through the real services, and Twilio's side
of the conversation as signed webhooks.

The dispatcher does not run here: tests play its part by marking deliveries sent, so each
test decides exactly what each contact has been told.
"""

from __future__ import annotations

import itertools
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client, Contact
from app.db import transaction
from app.dispatch.dispatcher import Waker
from app.dispatch.models import Delivery, DeliveryKind
from app.dispatch.outbox import take_message
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.messages.models import Message, MessageEvent, message_ref
from app.settings import Settings
from app.telephony.sandbox.signing import signed_post
from tests.clock import FakeClock

PLUMBERS = """
    client: night-plumbers
    name: Acme Plumbing
    numbers: ["+441134960700"]
    timezone: Europe/London
    caller_updates: false
    contacts:
      - {id: sam, name: Sam Taylor, phone: "+441134960701", channels: [sms, voice]}
      - {id: alex, name: Alex Reed, phone: "+441134960702", email: alex@example.com,
         channels: [sms]}
      - {id: priya, name: Priya Shah, phone: "+441134960703", channels: [voice, sms]}
    escalation:
      steps:
        - {notify: everyone, wait_minutes: 10}
    steps:
      take:
        type: take_message
"""
NUMBER = "+441134960700"
SAM, ALEX, PRIYA = "+441134960701", "+441134960702", "+441134960703"
CALLER = "+441134960999"


@dataclass
class Desk:
    """The tests' hands on the service: arrange messages and deliveries, send webhooks, look."""

    client: TestClient
    settings: Settings
    sessions: sessionmaker[Session]
    clock: FakeClock
    _sids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._sids):032d}"

    def message(
        self, caller: str = CALLER, urgency: Urgency = Urgency.urgent, **answers: str
    ) -> int:
        """A message as a call saves it: its first escalation step queued in the outbox."""
        with transaction(self.sessions) as session:
            client = session.scalars(select(Client).where(Client.slug == "night-plumbers")).one()
            assert client.active_flow_id is not None
            flow = FlowStore().get(session, client.active_flow_id)
            call = Call(
                sid=self.sid("CA"),
                client_id=client.id,
                flow_version_id=client.active_flow_id,
                caller=caller,
                called=NUMBER,
                state={},
                started_at=self.clock(),
            )
            session.add(call)
            session.flush()
            save = SaveMessage(urgency=urgency, answers=dict(answers), outcome="message")
            message = take_message(session, call, flow, save, {}, self.clock())
            assert message is not None
            return message.id

    def sent(self, message_id: int, contact: str, sid: str | None = None) -> int:
        """Play the dispatcher: the contact's notification for this message went out as `sid`."""
        with transaction(self.sessions) as session:
            delivery = session.scalars(
                select(Delivery)
                .join(Contact, Contact.id == Delivery.contact_id)
                .where(
                    Delivery.message_id == message_id,
                    Contact.key == contact,
                    Delivery.kind == DeliveryKind.notify,
                )
            ).one()
            prefix = "CA" if delivery.channel == "voice" else "SM"
            delivery.status, delivery.sent_at = "sent", self.clock()
            delivery.provider_sid = sid or self.sid(prefix)
            message = session.get(Message, message_id)
            assert message is not None
            message.status = "notified"
            return delivery.id

    def post(self, path: str, params: dict[str, str], token: str | None = None) -> httpx.Response:
        """A webhook signed as Twilio signs it (or with another token, to forge one)."""
        token = token or self.settings.twilio_auth_token
        return signed_post(self.client, self.settings.public_url, path, params, token)

    def text(self, sender: str, body: str, sid: str | None = None) -> str | None:
        """An SMS from `sender` to the client's number; returns what we texted back, if anything."""
        params = {"MessageSid": sid or self.sid("SM"), "From": sender, "To": NUMBER, "Body": body}
        response = self.post("/twilio/sms", params)
        assert response.status_code == 200, response.text
        reply = read_twiml(response.text).find("Message")
        return None if reply is None else reply.text

    def look(self, message_id: int) -> Message:
        with self.sessions() as session:
            message = session.get(Message, message_id)
            assert message is not None
            return message

    def deliveries(self, message_id: int, **where: Any) -> list[Delivery]:
        with self.sessions() as session:
            query = select(Delivery).where(Delivery.message_id == message_id).filter_by(**where)
            return list(session.scalars(query.order_by(Delivery.id)))

    def timeline(self, message_id: int) -> list[str]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(MessageEvent.kind)
                    .where(MessageEvent.message_id == message_id)
                    .order_by(MessageEvent.id)
                )
            )

    def contact(self, key: str) -> Contact:
        with self.sessions() as session:
            return session.scalars(select(Contact).where(Contact.key == key)).one()


@pytest.fixture
def desk(
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    load_client: Callable[[str], None],
) -> Desk:
    load_client(PLUMBERS)
    return Desk(client, settings, session_factory, clock)


def read_twiml(text: str) -> ET.Element:
    # The document comes from the service under test, trusted as much as the tests; the
    # standard parser refuses external entities, and defusedxml is not a dependency.
    return ET.fromstring(text)  # noqa: S314


def ref(message_id: int) -> str:
    return message_ref(message_id)


class WatchedWaker(Waker):
    """A dispatcher's waker that says when the loop has settled down to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float) -> None:
        self.waiting.set()
        super().wait(timeout)
