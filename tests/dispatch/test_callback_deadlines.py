"""From the caller's side: the client promised a call back within the hour. When the hour
passes and nobody has recorded calling back, the on-call engineer is paged again, once,
however many dispatchers are running. Twilio is the local fake; time is a FakeClock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from ipaddress import ip_address

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.acks.service import acknowledge, record_called_back
from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import transaction
from app.dispatch.callbacks import ReescalateOverdueCallbacks
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.links import Links
from app.dispatch.outbox import take_message
from app.dispatch.senders import make_senders
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.messages.models import Message, MessageEvent
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.webhooks.destinations import Destination
from app.webhooks.models import WebhookDelivery
from app.webhooks.service import add_endpoint
from tests.clock import FakeClock
from tests.dispatch.test_escalation import Holding, only_on_postgresql, texts_to
from tests.support.locks import Racer

PROMISE = """
    client: promise-plumbing
    name: Promise Plumbing
    numbers: ["+441134960810"]
    timezone: Europe/London
    caller_updates: false
    contacts:
      - {id: sam, name: Sam Taylor, phone: "+447911123456", channels: [sms]}
    escalation:
      steps: [{notify: sam, wait_minutes: 10}]
      repeat: 0
      callback_minutes: 60
    steps:
      take: {type: take_message, urgency: urgent}
"""
SAM = "+447911123456"


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(
        settings.twilio_account_sid, settings.twilio_auth_token, deliver=lambda *_: None
    ) as fake:
        yield fake


@pytest.fixture
def dispatcher(
    app: FastAPI,
    settings: Settings,
    clock: FakeClock,
    client: TestClient,
    fake_twilio: FakeTwilio,
    load_client: Callable[[str], None],
) -> Iterator[Dispatcher]:
    load_client(PROMISE)
    sending = settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})
    yield Dispatcher(
        database=app.state.database,
        flows=FlowStore(),
        senders=make_senders(sending),
        links=Links(settings.public_url, settings.secret_key, clock),
        clock=clock,
    )
    fake_twilio.settle()


@pytest.fixture
def leave_message(session_factory: sessionmaker[Session], clock: FakeClock) -> Callable[[], int]:
    def leave() -> int:
        with transaction(session_factory) as session:
            client = session.scalars(select(Client).where(Client.slug == "promise-plumbing")).one()
            assert client.active_flow_id is not None
            flow = FlowStore().get(session, client.active_flow_id)
            call = Call(
                sid=f"CA{clock().timestamp():032.0f}",
                client_id=client.id,
                caller="+441134960999",
                called=flow.numbers[0],
                flow_version_id=client.active_flow_id,
                state={},
                started_at=clock(),
            )
            session.add(call)
            session.flush()
            save = SaveMessage(urgency=Urgency.urgent, answers={"name": "Jo"}, outcome="message")
            message = take_message(session, call, flow, save, {}, clock())
            assert message is not None
            return message.id

    return leave


def pages(fake: FakeTwilio) -> list[str]:
    """The texts asking Sam to take the message (not the "Sam has it" confirmations)."""
    return [body for body in texts_to(fake, SAM) if "Reply 1 to take it" in body]


def _acknowledge(sessions: sessionmaker[Session], message_id: int, clock: FakeClock) -> None:
    with transaction(sessions) as session:
        acknowledge(session, FlowStore(), message_id, by="Sam Taylor", via="sms", now=clock())


def _timeline(sessions: sessionmaker[Session], message_id: int) -> list[str]:
    with sessions() as session:
        query = select(MessageEvent.kind).where(MessageEvent.message_id == message_id)
        return list(session.scalars(query.order_by(MessageEvent.id)))


def test_an_hour_with_no_call_back_pages_the_engineer_again_once(
    dispatcher: Dispatcher, leave_message: Callable[[], int], fake_twilio: FakeTwilio,
    clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    with transaction(session_factory) as session:  # the client's own system listens too
        hook = Destination("https://crm.example/hook", "crm.example", ip_address("93.184.216.34"))
        add_endpoint(session, "promise-plumbing", hook, ["message.acknowledged"], clock())
    message_id = leave_message()
    dispatcher.run_once()
    fake_twilio.settle()
    assert len(pages(fake_twilio)) == 1
    clock.advance(minutes=2)
    _acknowledge(session_factory, message_id, clock)  # Sam has it… and forgets to ring back

    clock.advance(minutes=57)
    dispatcher.run_once()
    fake_twilio.settle()
    assert len(pages(fake_twilio)) == 1, "not before the hour is up"

    clock.advance(minutes=1)
    dispatcher.run_once()
    fake_twilio.settle()
    first, again = pages(fake_twilio)
    assert again.startswith("CALL BACK OVERDUE: "), "paged again, saying why"
    assert "OVERDUE" not in first
    assert "callback_overdue" in _timeline(session_factory, message_id)
    with session_factory() as session:
        assert session.get(Message, message_id).status == "notified"  # type: ignore[union-attr]

    clock.advance(hours=3)
    for _ in range(3):
        dispatcher.run_once()
    fake_twilio.settle()
    assert len(pages(fake_twilio)) == 2, "once per deadline"
    _acknowledge(session_factory, message_id, clock)  # a second acknowledgement stops it
    with session_factory() as session:
        assert session.get(Message, message_id).status == "acknowledged"  # type: ignore[union-attr]
        owed = session.scalars(select(WebhookDelivery.event_type)).all()
    assert owed.count("message.acknowledged") == 2, "the client's system hears of both"


def test_a_call_back_recorded_in_time_means_nobody_is_paged_again(
    dispatcher: Dispatcher, leave_message: Callable[[], int], fake_twilio: FakeTwilio,
    clock: FakeClock, session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message()
    dispatcher.run_once()
    clock.advance(minutes=20)
    with transaction(session_factory) as session:
        message = session.get(Message, message_id)
        assert message is not None
        acknowledge(session, FlowStore(), message_id, by="Sam Taylor", via="sms", now=clock())
        record_called_back(session, message, by="Sam Taylor", via="portal", now=clock())
    clock.advance(hours=2)
    dispatcher.run_once()
    fake_twilio.settle()
    assert len(pages(fake_twilio)) == 1
    assert "callback_overdue" not in _timeline(session_factory, message_id)


def test_a_deadline_acted_on_is_gone_so_running_the_module_again_pages_nobody(
    dispatcher: Dispatcher, leave_message: Callable[[], int], clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message_id = leave_message()
    _acknowledge(session_factory, message_id, clock)
    clock.advance(hours=1)
    module = ReescalateOverdueCallbacks(dispatcher.database, dispatcher.flows)
    assert module.run(clock()) == 1
    assert module.run(clock()) == 0
    assert _timeline(session_factory, message_id).count("callback_overdue") == 1


def test_a_second_dispatcher_passes_over_a_deadline_the_first_is_acting_on(
    dispatcher: Dispatcher, leave_message: Callable[[], int], clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    """SKIP LOCKED: it neither waits for the first nor escalates the message again."""
    only_on_postgresql(dispatcher)
    message_id = leave_message()
    _acknowledge(session_factory, message_id, clock)
    clock.advance(hours=1)
    sessions, flows = dispatcher.database.sessions, dispatcher.flows

    def module(session: Session) -> int:
        return ReescalateOverdueCallbacks(Holding(session), flows).run(clock())

    with transaction(sessions) as session:
        assert module(session) == 1
        second = Racer(sessions, module)
        assert second.result() == 0, "it waited for the first, or escalated again"
    assert _timeline(session_factory, message_id).count("callback_overdue") == 1
