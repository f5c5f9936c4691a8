# ruff: noqa: F811 - the night shift's fixtures, imported by name, are parameters here
"""Privacy mode from the contact's side: the text that leaves through Twilio (the local fake, over
HTTP) and the email the SMTP server receives say that a message is waiting, never what it is.

Twilio is the fake over HTTP, email goes over SMTP to a local inbox, time is a FakeClock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import transaction
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.links import Links
from app.dispatch.outbox import take_message
from app.dispatch.senders import make_senders
from app.flows.engine import SaveMessage
from app.flows.pins import hash_pin
from app.flows.schema import Urgency
from app.messages.models import message_ref
from app.messages.service import recording_fields
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.dispatch.test_escalation import (  # noqa: F401 - fixtures, used by name
    callbacks,
    fake_twilio,
    inbox,
    settings,
)
from tests.support.callbacks import ToTheApp
from tests.support.smtp import SmtpInbox

CLINIC = f"""
    client: quiet-clinic
    name: Quiet Clinic
    numbers: ["+441134960900"]
    timezone: Europe/London
    caller_updates: false
    privacy:
      pin: "{hash_pin("2468")}"
    contacts:
      - {{id: doc, name: Dr Kay, phone: "+447911222333", channels: [sms]}}
      - {{id: office, name: The office, email: office@quiet-clinic.example, channels: [email]}}
    escalation:
      steps:
        - {{notify: everyone, wait_minutes: 10}}
    steps:
      take:
        type: take_message
        urgency: urgent
"""
DOC = "+447911222333"
PATIENT = "+447700900123"
RECORDING = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "a" * 32
# Everything the caller left: none of it may leave in a text or an email.
CONTENT = ("Ann Lee", PATIENT, "7700", "chest pain", "My chest hurts", "Recordings/RE", "patient")


@pytest.fixture
def dispatcher(
    app: FastAPI,
    settings: Settings,
    clock: FakeClock,
    client: TestClient,
    fake_twilio: FakeTwilio,
    callbacks: ToTheApp,
    load_client: Callable[[str], None],
) -> Iterator[Dispatcher]:
    load_client(CLINIC)
    callbacks.client = client
    yield Dispatcher(
        database=app.state.database,
        flows=FlowStore(),
        senders=make_senders(settings),
        links=Links(settings.public_url, settings.secret_key, clock),
        clock=clock,
    )
    fake_twilio.settle()
    callbacks.client = None


def leave_message(sessions: sessionmaker[Session], clock: FakeClock) -> int:
    """Ann Lee's message, as a call saves it: her answers, a voicemail and its recording."""
    with transaction(sessions) as session:
        client = session.scalars(select(Client).where(Client.slug == "quiet-clinic")).one()
        assert client.active_flow_id is not None
        flow = FlowStore().get(session, client.active_flow_id)
        call = Call(sid="CA" + "1" * 32, client_id=client.id, caller=PATIENT,
                    called="+441134960900", flow_version_id=client.active_flow_id, state={},
                    started_at=clock())  # fmt: skip
        session.add(call)
        session.flush()
        answers = {"patient_name": "Ann Lee", "callback": PATIENT, "symptom": "chest pain"}
        attachments = recording_fields({"sid": "RE" + "a" * 32, "url": RECORDING, "seconds": 9})
        attachments["transcription"] = "My chest hurts since tonight."
        save = SaveMessage(urgency=Urgency.urgent, answers=answers, outcome="message")
        message = take_message(session, call, flow, save, attachments, clock())
        assert message is not None
        return message.id


def test_the_text_through_twilio_and_the_email_over_smtp_carry_no_message_content(
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    inbox: SmtpInbox,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    message_id = leave_message(session_factory, clock)
    ref = message_ref(message_id)

    dispatcher.run_once()

    [text] = [m.body for m in fake_twilio.messages if m.to == DOC]
    assert text == (
        f"New urgent message for Quiet Clinic #{ref}, reply 1 to take it "
        f"(ACK {ref} if several); details in the portal."
    )
    [email] = inbox.wait_for(1)
    assert email["To"] == "office@quiet-clinic.example"
    assert email["Subject"] == f"[URGENT] New message for Quiet Clinic (#{ref})"
    plain, html = email.get_body(("plain",)), email.get_body(("html",))
    assert plain is not None
    assert html is not None
    everything = "\n".join([text, str(email["Subject"]), plain.get_content(), html.get_content()])
    assert [secret for secret in CONTENT if secret in everything] == []
    assert f"https://nightdesk.test/portal/messages/{message_id}" in plain.get_content()
    assert "https://nightdesk.test/ack/" in plain.get_content()  # taking it needs no content


def test_the_same_message_for_a_client_without_privacy_mode_says_what_it_is(
    dispatcher: Dispatcher,
    fake_twilio: FakeTwilio,
    inbox: SmtpInbox,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    load_client: Callable[[str], None],
) -> None:
    """The control: without `privacy:` the same texts carry the caller and what they said, so
    the test above fails when privacy mode stops working, not only when texts change."""
    without = "\n".join(
        line for line in CLINIC.splitlines() if "privacy:" not in line and "pin:" not in line
    )
    load_client(without)
    leave_message(session_factory, clock)

    dispatcher.run_once()

    [text] = [m.body for m in fake_twilio.messages if m.to == DOC]
    assert "Ann Lee" in text
    assert "chest" in text
    [email] = inbox.wait_for(1)
    plain = email.get_body(("plain",))
    assert plain is not None
    assert "chest pain" in plain.get_content()
    assert "Listen to the recording: https://nightdesk.test/ack/" in plain.get_content()
