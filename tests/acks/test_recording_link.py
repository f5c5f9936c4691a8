# ruff: noqa: F811 - the night shift's fixtures, imported by name, are parameters here
"""The recording link in a notification email, from the contact's side: the email that reaches the
SMTP server links to Nightdesk, never to Twilio, and the link plays the caller's voice (fetched
from the fake Twilio over HTTP with the account's credentials) for as long as the acknowledge
link works.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
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
from app.flows.engine import SaveMessage
from app.flows.pins import hash_pin
from app.flows.schema import Urgency
from app.messages.service import recording_fields
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.dispatch.test_escalation import (  # noqa: F401 - fixtures, used by name
    callbacks,
    dispatcher,
    fake_twilio,
    inbox,
    settings,
)
from tests.support.smtp import SmtpInbox

OFFICE = """
    client: {slug}
    name: {name}
    numbers: ["{number}"]
    timezone: Europe/London
    caller_updates: false
    {privacy}
    contacts:
      - {{id: office, name: The office, email: office@{slug}.example, channels: [email]}}
    escalation:
      steps:
        - {{notify: everyone, wait_minutes: 10}}
    steps:
      take:
        type: take_message
"""
NUMBERS = {"harbour": "+441134960910", "clinic": "+441134960920"}
HARBOUR = OFFICE.format(
    slug="harbour", name="Harbour Plumbing", number=NUMBERS["harbour"], privacy=""
)
CLINIC = OFFICE.format(
    slug="clinic", name="Quiet Clinic", number=NUMBERS["clinic"],
    privacy=f'privacy: {{pin: "{hash_pin("2468")}"}}',
)  # fmt: skip
VOICE = b"ID3\x04\x00 Kim: the boiler is leaking again" * 50
LISTEN = re.compile(r"Listen to the recording: (\S+)")


@pytest.fixture
def offices(dispatcher: Dispatcher, load_client: Callable[[str], None]) -> Dispatcher:
    """The night shift's dispatcher, run by hand, with Harbour's and the clinic's offices."""
    load_client(HARBOUR)
    load_client(CLINIC)
    return dispatcher


def voicemail(sessions: sessionmaker[Session], clock: FakeClock, slug: str, recording: str) -> int:
    """Kim's voicemail to `slug`, as a call saves it: her answers and the recording's URL."""
    with transaction(sessions) as session:
        client = session.scalars(select(Client).where(Client.slug == slug)).one()
        assert client.active_flow_id is not None
        flow = FlowStore().get(session, client.active_flow_id)
        call = Call(sid=f"CA{slug:0>32}", client_id=client.id, caller="+447700900123",
                    called=NUMBERS[slug], flow_version_id=client.active_flow_id, state={},
                    started_at=clock())  # fmt: skip
        session.add(call)
        session.flush()
        sid = recording.rsplit("/", 1)[1]
        attachments = recording_fields({"sid": sid, "url": recording, "seconds": 9})
        save = SaveMessage(urgency=Urgency.urgent, answers={"name": "Kim"}, outcome="message")
        message = take_message(session, call, flow, save, attachments, clock())
        assert message is not None
        return message.id


def emailed(inbox: SmtpInbox) -> str:
    """The one email received: its plain text and HTML bodies, in one string."""
    [email] = inbox.wait_for(1)
    plain, html = email.get_body(("plain",)), email.get_body(("html",))
    assert plain is not None
    assert html is not None
    text: str = plain.get_content() + html.get_content()
    return text


def listen_path(email: str) -> str:
    """The path of the email's link to the recording, on Nightdesk."""
    link = LISTEN.search(email)
    assert link is not None
    assert link[1].startswith("https://nightdesk.test/ack/")
    return link[1].removeprefix("https://nightdesk.test")


def test_the_email_plays_the_recording_through_nightdesk_and_never_names_twilio(
    offices: Dispatcher,
    client: TestClient,
    fake_twilio: FakeTwilio,
    inbox: SmtpInbox,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    recording = fake_twilio.add_recording(VOICE)
    voicemail(session_factory, clock, "harbour", recording)

    offices.run_once()

    email = emailed(inbox)
    assert "twilio.com" not in email
    assert recording.rsplit("/", 1)[1] not in email  # not even the recording's sid
    assert "These links work for 7 days." in email
    audio = client.get(listen_path(email))
    assert (audio.status_code, audio.headers["content-type"]) == (200, "audio/mpeg")
    assert audio.content == VOICE
    assert audio.headers["cache-control"] == "private, no-store"
    (fetched,) = [r for r in fake_twilio.requests if r.path.endswith(".mp3")]
    assert fetched.status == 200  # the fake checked the account's credentials


def test_the_recording_link_stops_working_when_the_acknowledge_link_does(
    offices: Dispatcher,
    client: TestClient,
    fake_twilio: FakeTwilio,
    inbox: SmtpInbox,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    voicemail(session_factory, clock, "harbour", fake_twilio.add_recording(VOICE))
    offices.run_once()
    path = listen_path(emailed(inbox))

    clock.advance(days=6, hours=23)
    assert client.get(path).content == VOICE

    clock.advance(hours=1, seconds=1)
    late = client.get(path)
    assert late.status_code == 410
    assert "This link to a recording has expired" in late.text
    assert late.headers["cache-control"] == "no-store"


def test_a_link_that_is_not_ours_or_a_clinics_in_privacy_mode_plays_nothing(
    offices: Dispatcher,
    client: TestClient,
    settings: Settings,
    fake_twilio: FakeTwilio,
    inbox: SmtpInbox,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    private = voicemail(session_factory, clock, "clinic", fake_twilio.add_recording(VOICE))
    offices.run_once()
    assert "Listen to the recording" not in emailed(inbox)  # privacy mode: no content by email
    # The clinic's own acknowledge link, with /recording added, plays nothing either.
    ack = Links(settings.public_url, settings.secret_key, clock).ack(private, None)
    forged = Links(settings.public_url, "not-the-secret-key-" * 3, clock).ack(private, None)

    for url in (ack, forged, f"{settings.public_url}/ack/nonsense"):
        page = client.get(Links.ack_recording(url).removeprefix(settings.public_url))
        assert page.status_code == 404
        assert VOICE not in page.content
    assert not [r for r in fake_twilio.requests if r.path.endswith(".mp3")]


def test_a_recording_twilio_will_not_hand_over_gets_a_page_that_says_so(
    offices: Dispatcher,
    client: TestClient,
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    gone = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE" + "0" * 32
    message = voicemail(session_factory, clock, "harbour", gone)
    ack = Links(settings.public_url, settings.secret_key, clock).ack(message, None)

    page = client.get(Links.ack_recording(ack).removeprefix(settings.public_url))

    assert page.status_code == 502
    assert "Twilio did not hand the recording over just now" in page.text
