"""From the on-call contact's side: messages arrive by SMS, call and email, and keep coming until
someone acknowledges. Twilio is the local fake over HTTP; email goes over SMTP; time is a FakeClock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.acks.service import acknowledge
from app.clients.flows import FlowStore
from app.db import Database, Work, make_database, transaction
from app.dispatch import outbox
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.escalations import FireEscalations
from app.dispatch.links import Links
from app.dispatch.models import Delivery
from app.dispatch.senders import Outgoing, Sender, make_senders
from app.dispatch.sending import SendDeliveries
from app.dispatch.status import apply_status
from app.dispatch.webhooks import StatusReport
from app.flows.schema import Channel, Urgency
from app.messages.models import Message, MessageEvent
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.support.callbacks import ToTheApp
from tests.support.locks import Racer, wait_until_someone_waits_for
from tests.support.smtp import SmtpInbox

NIGHT_SHIFT = """
    client: night-shift
    name: Night Shift Plumbing
    numbers: ["+441134960800"]
    timezone: Europe/London
    contacts:
      - {id: sam, name: Sam Taylor, phone: "+447911123456", channels: [sms, voice]}
      - {id: alex, name: Alex Reed, phone: "+447911654321", channels: [sms]}
      - {id: office, name: The office, email: office@night-shift.example, channels: [email]}
      - {id: quiet, name: Quinn Quiet, phone: "+447911000111", channels: [sms],
         quiet_hours: ["22:00-07:00"]}
    groups:
      sleepers: [quiet]
    rotation: {members: [sam, alex], handoff: "08:00", starts: 2026-01-05}
    escalation:
      steps:
        - {notify: on_call, wait_minutes: 10}
        - {notify: alex, wait_minutes: 10}
      repeat: 1
      fallback: office
    escalation_by_urgency:
      routine:
        steps:
          - {notify: sleepers, wait_minutes: 30}
      emergency:
        steps:
          - {notify: office, wait_minutes: 5}
    steps:
      take:
        type: take_message
        urgency: urgent
"""
T = TypeVar("T")
SAM, ALEX, QUINN = "+447911123456", "+447911654321", "+447911000111"
CALLER_MOBILE = "+447700123456"


@pytest.fixture
def callbacks() -> ToTheApp:
    return ToTheApp()


@pytest.fixture
def fake_twilio(settings: Settings, callbacks: ToTheApp) -> Iterator[FakeTwilio]:
    token = settings.twilio_auth_token
    with FakeTwilio(settings.twilio_account_sid, token, deliver=callbacks) as fake:
        yield fake


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as smtp:
        yield smtp


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio, inbox: SmtpInbox) -> Settings:
    return settings.model_copy(
        update={
            "run_dispatcher": False,
            "twilio_api_base": fake_twilio.base_url,
            "smtp_url": inbox.url,
        }
    )


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
    """The dispatcher, run by hand (`run_once`) under the test's clock."""
    load_client(NIGHT_SHIFT)
    callbacks.client = client  # Twilio's status callbacks reach the app as signed webhooks
    yield Dispatcher(
        database=app.state.database,
        flows=FlowStore(),
        senders=make_senders(settings),
        links=Links(settings.public_url, settings.secret_key, clock),
        clock=clock,
    )
    fake_twilio.settle()
    callbacks.client = None


@pytest.fixture
def leave_message(
    app: FastAPI, session_factory: sessionmaker[Session], clock: FakeClock
) -> Callable[..., int]:
    from app.calls.models import Call
    from app.clients.models import Client
    from app.dispatch.outbox import take_message
    from app.flows.engine import SaveMessage

    counter = iter(range(1, 1_000_000))

    def leave(
        caller: str = CALLER_MOBILE, urgency: Urgency = Urgency.urgent, **answers: str
    ) -> int:
        with transaction(session_factory) as session:
            client = session.scalars(select(Client).where(Client.slug == "night-shift")).one()
            assert client.active_flow_id is not None
            flow = FlowStore().get(session, client.active_flow_id)
            call = Call(sid=f"CA{next(counter):032d}", client_id=client.id, caller=caller,
                        called="+441134960800", flow_version_id=client.active_flow_id, state={},
                        started_at=clock())  # fmt: skip
            session.add(call)
            session.flush()
            answers = answers or {"name": "Jo Bloggs", "callback": caller}
            save = SaveMessage(urgency=urgency, answers=answers, outcome="message")
            message = take_message(session, call, flow, save, {}, clock())
            assert message is not None
            return message.id

    return leave


def texts_to(fake: FakeTwilio, number: str) -> list[str]:
    return [m.body for m in fake.messages if m.to == number]


def deliveries(reader: sessionmaker[Session] | Dispatcher, message_id: int) -> list[Delivery]:
    """A message's deliveries, read as the test's own process, or through the dispatcher's
    database (its unit of work waits its turn with the app's)."""

    def read(session: Session) -> list[Delivery]:
        query = select(Delivery).where(Delivery.message_id == message_id).order_by(Delivery.id)
        return list(session.scalars(query))

    if isinstance(reader, Dispatcher):
        return reader.database.run_blocking(read)
    with reader() as session:
        return read(session)


def test_the_engineer_on_call_gets_a_text_with_the_caller_and_a_reference(
    dispatcher: Dispatcher,
    leave_message: Callable[..., int],
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
) -> None:
    message_id = leave_message(name="Jo Bloggs", callback=CALLER_MOBILE)
    dispatcher.run_once()

    assert sorted(m.to for m in fake_twilio.messages) == sorted([SAM, CALLER_MOBILE])
    (text,) = texts_to(fake_twilio, SAM)
    assert text.startswith("URGENT Night Shift Plumbing #")
    assert "Jo Bloggs" in text
    assert "Reply 1" in text
    assert "http" not in text  # carriers filter links
    sent = [d for d in deliveries(session_factory, message_id) if d.address == SAM]
    assert sent[0].status in ("sent", "delivered")
    assert sent[0].provider_sid == fake_twilio.messages[0].sid or sent[0].provider_sid


def test_the_caller_is_told_their_message_was_passed_on_and_then_who_has_it(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message()
    dispatcher.run_once()
    assert texts_to(fake_twilio, CALLER_MOBILE) == [
        "Your message for Night Shift Plumbing has been passed to the person on call. "
        "They'll be in touch."
    ]
    with transaction(session_factory) as session:
        acknowledge(session, dispatcher.flows, message_id, by="Sam Taylor", via="sms", now=clock())
    dispatcher.run_once()
    assert texts_to(fake_twilio, CALLER_MOBILE)[-1] == (
        "Sam Taylor from Night Shift Plumbing has your message and will call you back."
    )


@pytest.mark.parametrize("caller", ["+441134960999", "anonymous"])
def test_landline_and_withheld_callers_get_no_texts(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio, caller: str
) -> None:
    leave_message(caller=caller)
    dispatcher.run_once()
    assert texts_to(fake_twilio, caller) == []


def test_no_acknowledgement_after_10_minutes_pages_the_next_contact(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    leave_message()
    dispatcher.run_once()
    clock.advance(minutes=9)
    dispatcher.run_once()
    assert texts_to(fake_twilio, ALEX) == []
    clock.advance(minutes=1)
    dispatcher.run_once()
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, ALEX)) == 1


def test_when_nobody_acknowledges_the_whole_policy_repeats_then_the_fallback_is_told(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, inbox: SmtpInbox, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message()
    for _ in range(6):
        dispatcher.run_once()
        clock.advance(minutes=10)
        dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 2  # round 1 and its repeat
    assert len(texts_to(fake_twilio, ALEX)) == 2
    (warning,) = inbox.wait_for(1)
    assert "nobody has acknowledged" in warning.get_content() or "nobody" in str(warning)
    with session_factory() as session:
        from app.messages.models import Message

        message = session.get(Message, message_id)
        assert message is not None
        assert message.status == "unacknowledged"


def test_an_escalation_step_run_twice_notifies_each_contact_once(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    """A retry or a second worker running a step again finds its rows there (dedupe keys)."""
    message_id = leave_message()

    def start_again(session: Session) -> None:
        message = session.get(Message, message_id)
        assert message is not None
        flow = dispatcher.flows.for_client(session, message.client_id)
        assert flow is not None
        outbox.start_escalation(session, message, flow, clock())
        outbox.queue_caller_update(session, message, flow, "Passed on.", "taken", clock())

    dispatcher.database.run_blocking(start_again)
    dispatcher.database.run_blocking(start_again)
    dispatcher.run_once()

    assert len(texts_to(fake_twilio, SAM)) == 1
    assert len(texts_to(fake_twilio, CALLER_MOBILE)) == 1
    assert [d.address for d in deliveries(dispatcher, message_id)] == [SAM, CALLER_MOBILE]


def test_an_acknowledgement_stops_escalation_on_every_channel(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message()
    dispatcher.run_once()
    with transaction(session_factory) as session:
        first = acknowledge(session, dispatcher.flows, message_id, by="Sam Taylor", via="sms",
                            now=clock())  # fmt: skip
        second = acknowledge(session, dispatcher.flows, message_id, by="Alex Reed", via="sms",
                             now=clock())  # fmt: skip
    assert first.first
    assert not second.first
    assert second.by == "Sam Taylor"
    clock.advance(hours=2)
    dispatcher.run_once()
    assert texts_to(fake_twilio, ALEX) == []


def test_a_failed_text_moves_to_the_contacts_next_channel_without_waiting(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio
) -> None:
    fake_twilio.set_sms_outcome(SAM, "undelivered", error_code=30003)
    leave_message()
    dispatcher.run_once()
    fake_twilio.settle()
    dispatcher.run_once()
    calls = [c for c in fake_twilio.calls if c.to == SAM]
    assert len(calls) == 1, "Sam's next channel is a voice call, placed straight away"


@dataclass
class HearsBackFirst:
    """A sender whose send returns only after Twilio's status callbacks for it are in."""

    sender: Sender
    twilio: FakeTwilio

    def send(self, outgoing: Outgoing) -> str:
        sid = self.sender.send(outgoing)
        self.twilio.settle()
        return sid

    def find_previous(self, outgoing: Outgoing) -> str | None:
        return self.sender.find_previous(outgoing)


def test_a_failure_twilio_reports_before_the_send_is_written_down_is_kept(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
) -> None:  # fmt: skip
    """The status callback beat the dispatcher's own record: "sent" must not overwrite it."""
    senders = dict(dispatcher.senders)
    senders[Channel.sms] = HearsBackFirst(senders[Channel.sms], fake_twilio)
    dispatcher.senders = senders
    dispatcher.__post_init__()
    fake_twilio.set_sms_outcome(SAM, "undelivered", error_code=30003)
    message_id = leave_message(caller="+441134960999")
    dispatcher.run_once()

    text, call = deliveries(dispatcher, message_id)
    assert (text.channel, text.status, text.provider_status) == ("sms", "failed", "undelivered")
    assert "30003" in (text.error or "")
    assert (call.channel, call.status) == ("voice", "pending")


def test_a_failure_twilio_reports_while_the_send_is_written_down_is_kept(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, callbacks: ToTheApp, settings: Settings,
) -> None:  # fmt: skip
    """PostgreSQL: the dispatcher's record waits at the delivery's row lock while the callback
    is stored, then sees the failure. Reading the row unlocked, it would write "sent" over it."""
    only_on_postgresql(dispatcher)
    senders = make_senders(settings)
    paused = PausesAfterSending(senders[Channel.sms])
    sending = Dispatcher(
        database=dispatcher.database, flows=dispatcher.flows, links=dispatcher.links,
        senders={**senders, Channel.sms: paused}, clock=clock,
    )  # fmt: skip
    callbacks.client = None  # this test delivers the one callback that matters itself
    message_id = leave_message(caller="+441134960999")
    thread = threading.Thread(target=sending.run_once)
    thread.start()
    try:
        assert paused.sent.wait(timeout=10)
        (text,) = deliveries(dispatcher, message_id)
        failed = StatusReport.for_sms(
            {"MessageSid": fake_twilio.messages[0].sid, "MessageStatus": "undelivered",
             "ErrorCode": "30003"}
        )  # fmt: skip
        sessions = dispatcher.database.sessions
        with transaction(sessions) as session:
            apply_status(session, dispatcher.flows, text.id, failed, clock())
            paused.go.set()
            wait_until_someone_waits_for(session, sessions)
    finally:
        paused.go.set()
        thread.join()

    text, call = deliveries(dispatcher, message_id)
    assert (text.status, text.provider_status) == ("failed", "undelivered")
    assert "30003" in (text.error or "")
    assert (call.channel, call.status) == ("voice", "pending")


def test_a_twilio_outage_is_retried_with_backoff(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    fake_twilio.fail_next(2, status=500)
    message_id = leave_message(caller="+441134960999")  # a landline: only Sam's text goes out
    dispatcher.run_once()
    assert texts_to(fake_twilio, SAM) == []
    (pending,) = [d for d in deliveries(session_factory, message_id) if d.address == SAM]
    assert pending.status == "pending"
    assert pending.attempts == 1
    for _ in range(3):
        clock.advance(seconds=30)
        dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 1


def test_an_invalid_number_is_recorded_and_skipped(
    dispatcher: Dispatcher,
    leave_message: Callable[..., int],
    fake_twilio: FakeTwilio,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
) -> None:
    fake_twilio.mark_invalid(SAM)
    message_id = leave_message(caller="+441134960999")
    dispatcher.run_once()
    dispatcher.run_once()
    sam = [d for d in deliveries(session_factory, message_id) if d.address == SAM]
    assert [d.status for d in sam] == ["failed", "failed"], "Sam's text, then Sam's call"
    assert "21211" in (sam[0].error or "")
    clock.advance(seconds=1)  # the escalations module looks twice a second
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, ALEX)) == 1, "the next step, without waiting 10 minutes"


def test_a_timeout_after_twilio_accepted_the_text_does_not_send_it_twice(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    impatient = make_senders(settings.model_copy(update={"twilio_timeout": 0.3}))
    dispatcher.senders = impatient
    dispatcher.__post_init__()
    fake_twilio.delay_next(3.0)  # Twilio takes the text, but answers after we gave up
    message_id = leave_message(caller="+441134960999")
    dispatcher.run_once()
    clock.advance(minutes=2)
    dispatcher.run_once()
    fake_twilio.settle()
    assert len(texts_to(fake_twilio, SAM)) == 1
    (sam,) = [d for d in deliveries(session_factory, message_id) if d.address == SAM]
    assert sam.status in ("sent", "delivered")
    assert sam.provider_sid == fake_twilio.messages[0].sid


def test_a_worker_killed_mid_send_leaves_nothing_stuck_and_nothing_doubled(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message(caller="+441134960999")
    dispatcher.run_once()
    fake_twilio.settle()  # Twilio's status callbacks for it are in
    assert len(texts_to(fake_twilio, SAM)) == 1
    # Another worker claimed Sam's text again, reached Twilio, and died before writing it down.
    with transaction(session_factory) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.message_id == message_id, Delivery.address == SAM)
            .values(status="sending", lease_until=clock(), uncertain=True)
        )
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 1, "its lease hasn't run out yet"
    clock.advance(minutes=2)
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 1, "the text Twilio already has is recognised"
    (sam,) = [d for d in deliveries(session_factory, message_id) if d.address == SAM]
    assert sam.status in ("sent", "delivered")


class Killed(BaseException):
    """The process dying: nothing after it runs, not even `except Exception`."""


@dataclass
class DiesAfterSending:
    """A sender whose process is killed the moment Twilio has accepted the text."""

    sender: Sender
    died: threading.Event = field(default_factory=threading.Event)

    def send(self, outgoing: Outgoing) -> str:
        self.sender.send(outgoing)
        self.died.set()
        raise Killed  # on its send thread: nothing records the send

    def find_previous(self, outgoing: Outgoing) -> str | None:
        return self.sender.find_previous(outgoing)


def test_a_dispatcher_killed_after_twilio_took_the_text_is_not_followed_by_a_second_text(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, callbacks: ToTheApp, client: TestClient, settings: Settings,
) -> None:  # fmt: skip
    """The claim itself marks the delivery as possibly sent, so whoever claims it after the
    lease asks Twilio first: the killed process never got to write anything down."""
    senders = make_senders(settings)
    killed = DiesAfterSending(senders[Channel.sms])
    dying = Dispatcher(
        database=dispatcher.database, flows=dispatcher.flows, links=dispatcher.links,
        senders={**senders, Channel.sms: killed}, clock=clock,
    )  # fmt: skip
    message_id = leave_message(caller="+441134960999")  # a landline: only Sam's text
    callbacks.client = None  # the process that would hear Twilio's status callbacks is dead
    dying.cycle()
    assert killed.died.wait(timeout=10)
    fake_twilio.settle()
    callbacks.client = client
    assert len(texts_to(fake_twilio, SAM)) == 1
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 1, "its lease hasn't run out yet"
    clock.advance(minutes=2)
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 1, "the text Twilio already has is recognised"
    (sam,) = [d for d in deliveries(dispatcher, message_id) if d.address == SAM]
    assert sam.status in ("sent", "delivered")
    assert sam.provider_sid == fake_twilio.messages[0].sid
    assert sam.attempts == 2


@dataclass
class Slow:
    """A sender that has claimed its text and not yet reached Twilio until the test says so."""

    sender: Sender
    reached: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def send(self, outgoing: Outgoing) -> str:
        self.reached.set()
        self.go.wait(timeout=10)
        return self.sender.send(outgoing)

    def find_previous(self, outgoing: Outgoing) -> str | None:
        return self.sender.find_previous(outgoing)


@dataclass
class PausesAfterSending:
    """A sender that has reached Twilio and waits for the test before saying so."""

    sender: Sender
    sent: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)

    def send(self, outgoing: Outgoing) -> str:
        sid = self.sender.send(outgoing)
        self.sent.set()
        self.go.wait(timeout=10)
        return sid

    def find_previous(self, outgoing: Outgoing) -> str | None:
        return self.sender.find_previous(outgoing)


def test_a_text_being_sent_is_left_alone_by_another_dispatcher_until_its_lease_runs_out(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings,
) -> None:  # fmt: skip
    """Claimed, committed, not yet at Twilio: a lookup would find nothing, so only the lease
    keeps a second dispatcher from sending it too."""
    senders = make_senders(settings)
    slow = Slow(senders[Channel.sms])
    first = Dispatcher(
        database=dispatcher.database, flows=dispatcher.flows, links=dispatcher.links,
        senders={**senders, Channel.sms: slow}, clock=clock,
    )  # fmt: skip
    leave_message(caller="+441134960999")  # a landline: only Sam's text
    sending = threading.Thread(target=first.run_once)
    sending.start()
    try:
        assert slow.reached.wait(timeout=10)
        clock.advance(seconds=30)
        dispatcher.run_once()
    finally:
        slow.go.set()
        sending.join()
    fake_twilio.settle()

    assert len(texts_to(fake_twilio, SAM)) == 1


def test_messages_arriving_together_for_one_contact_are_bundled_into_one_text(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    leave_message(caller="+441134960901")
    dispatcher.run_once()
    leave_message(caller="+441134960902")
    leave_message(caller="+441134960903")
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, SAM)) == 1, "at most one text a minute to one contact"
    clock.advance(seconds=61)
    dispatcher.run_once()
    texts = texts_to(fake_twilio, SAM)
    assert len(texts) == 2
    assert texts[1].startswith("2 new messages for Night Shift Plumbing")


def test_routine_messages_wait_for_the_end_of_a_contacts_quiet_hours(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    leave_message(caller="+441134960999", urgency=Urgency.routine)  # 02:00 in London
    dispatcher.run_once()
    assert texts_to(fake_twilio, QUINN) == []
    clock.advance(hours=5)  # 07:00
    dispatcher.run_once()
    assert len(texts_to(fake_twilio, QUINN)) == 1


def test_an_email_carries_the_details_and_a_signed_acknowledge_link(
    dispatcher: Dispatcher, leave_message: Callable[..., int], inbox: SmtpInbox,
    client: TestClient, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message(caller="+441134960999", urgency=Urgency.emergency,
                               name="Jo Bloggs")  # fmt: skip
    dispatcher.run_once()
    (email,) = inbox.wait_for(1)
    assert email["To"] == "office@night-shift.example"
    assert "[EMERGENCY]" in email["Subject"]
    plain = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert plain is not None
    assert html is not None
    link = next(w for w in plain.get_content().split() if "/ack/" in w)
    assert link.startswith("https://nightdesk.test/ack/")
    assert "This link works for 7 days." in plain.get_content()
    assert "This link works for 7 days." in html.get_content()
    with session_factory() as session:
        from app.messages.models import Message

        assert session.get(Message, message_id).status == "notified"  # type: ignore[union-attr]


def test_two_dispatchers_racing_send_each_notification_once(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    settings: Settings, app: FastAPI, clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    other = Dispatcher(
        database=make_database(settings.database_url),  # as a second process would have
        flows=FlowStore(),
        senders=make_senders(settings),
        links=Links(settings.public_url, settings.secret_key, clock),
        clock=clock,
    )
    for index in range(10):
        leave_message(caller=f"+4411349609{index:02d}")
    barrier = threading.Barrier(2)

    def work(d: Dispatcher) -> None:
        barrier.wait()
        for _ in range(3):
            d.run_once()

    threads = [threading.Thread(target=work, args=(d,)) for d in (dispatcher, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.advance(minutes=5)
    dispatcher.run_once()
    bodies = texts_to(fake_twilio, SAM)
    assert len(bodies) == len(set(bodies))
    with session_factory() as session:
        sent = session.scalars(select(Delivery).where(Delivery.address == SAM)).all()
    assert all(d.attempts == 1 for d in sent)


@dataclass
class Holding:
    """A `Database` whose units all run in one transaction the test keeps open: a dispatcher
    caught in the middle of its work, its rows locked."""

    session: Session
    elsewhere: Database | None = None  # where units from other threads go, if anywhere
    owner: threading.Thread = field(default_factory=threading.current_thread)
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.engine = self.session.get_bind().engine
        self.sessions = sessionmaker(self.engine)

    def run_blocking(self, work: Work[T]) -> T:
        if self.elsewhere is not None and threading.current_thread() is not self.owner:
            return self.elsewhere.run_blocking(work)  # a send recording its outcome
        return work(self.session)

    async def run(self, work: Work[T]) -> T:
        return work(self.session)

    def close(self) -> None:
        pass


def only_on_postgresql(dispatcher: Dispatcher) -> None:
    if dispatcher.database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: a second dispatcher waits for it whatever it does")


def test_a_second_dispatcher_passes_over_an_escalation_the_first_is_firing(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    """SKIP LOCKED: it neither waits for the first nor fires the step again."""
    only_on_postgresql(dispatcher)
    message_id = leave_message(caller="+441134960999")
    dispatcher.run_once()
    clock.advance(minutes=10)
    sessions, flows = dispatcher.database.sessions, dispatcher.flows

    with transaction(sessions) as session:
        assert FireEscalations(Holding(session), flows).run(clock()) == 1
        second = Racer(sessions, lambda other: FireEscalations(Holding(other), flows).run(clock()))
        assert second.result() == 0, "it waited for the first, or fired the step too"
    dispatcher.run_once()

    assert len(texts_to(fake_twilio, ALEX)) == 1
    with sessions() as session:
        escalated = session.scalars(
            select(MessageEvent).where(
                MessageEvent.message_id == message_id, MessageEvent.kind == "escalated"
            )
        ).all()
    assert len(escalated) == 1


def test_a_second_dispatcher_passes_over_the_texts_the_first_is_sending(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    """SKIP LOCKED: it neither waits for the first nor sends the same texts."""
    only_on_postgresql(dispatcher)
    leave_message(caller="+441134960999")
    sessions = dispatcher.database.sessions

    def sending(session: Session) -> SendDeliveries:
        d = dispatcher
        return SendDeliveries(Holding(session, d.database), d.flows, d.senders, d.links)

    with transaction(sessions) as session:
        first = sending(session)
        assert first.run(clock()) == 1
        second = Racer(sessions, lambda other: sending(other).run(clock()))
        assert second.result() == 0, "it waited for the first, or sent the texts too"
    first.wait_until(in_flight=0)
    fake_twilio.settle()

    assert len(texts_to(fake_twilio, SAM)) == 1


def test_inside_the_server_the_dispatcher_is_woken_by_the_commit_not_a_timer(
    settings: Settings, clock: FakeClock, fake_twilio: FakeTwilio,
    load_client: Callable[[str], None],
) -> None:  # fmt: skip
    from app.main import create_app
    from app.telephony.sandbox.caller import SimulatedCaller

    load_client(NIGHT_SHIFT)
    live = create_app(settings.model_copy(update={"run_dispatcher": True}), clock)
    live.state.dispatcher.poll = 600.0  # so only the wake-up can send within the wait below
    with TestClient(live, base_url=settings.public_url) as http:
        SimulatedCaller(
            http, public_url=settings.public_url, auth_token=settings.twilio_auth_token,
            account_sid=settings.twilio_account_sid, from_number="+441134960999",
            to_number="+441134960800",
        ).run()  # fmt: skip
        sent = fake_twilio.wait_for(lambda: texts_to(fake_twilio, SAM), timeout=5.0)
    assert len(sent) == 1
