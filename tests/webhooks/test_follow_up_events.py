"""The client's system hears of every follow-up recorded in the portal or the API: called back
and closed, each with the message in the API's own shape (no Twilio URL in it)."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import Role
from app.accounts.service import Principal
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import transaction
from app.inbox.service import close_message, record_call_back
from app.messages.models import Message
from app.messages.queries import message_out
from tests.clock import FakeClock
from tests.support.receiver import WebhookReceiver
from tests.webhooks.conftest import Hooks, real_now, verified


def _owner(hooks: Hooks) -> Principal:
    with hooks.sessions() as session:
        client_id = session.scalar(select(Client.id).where(Client.slug == "acme-plumbing"))
    return Principal(user_id=1, name="Olive Owner", role=Role.client, client_id=client_id)


def test_a_call_back_and_closing_reach_the_clients_system_in_the_apis_shape(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    clock.set(real_now())
    _, secret = hooks.add(receiver.url, "message.called_back", "message.closed")
    message_id = hooks.message(name="Jo")
    owner = _owner(hooks)
    with transaction(hooks.sessions) as session:
        record_call_back(session, FlowStore(), owner, message_id, note="Fixed",
                         via="portal", now=clock())  # fmt: skip
    clock.advance(minutes=1)
    with transaction(hooks.sessions) as session:
        close_message(session, FlowStore(), owner, message_id, note=None, called_back=False,
                      via="api", now=clock())  # fmt: skip
    hooks.run()

    events = sorted((verified(secret, r) for r in receiver.wait_for(2)), key=lambda e: e["type"])
    called_back, closed = events  # sent side by side: they may arrive in either order
    assert [called_back["type"], closed["type"]] == ["message.called_back", "message.closed"]
    assert called_back["data"]["called_back_by"] == "Olive Owner"
    assert closed["data"]["closed_by"] == "Olive Owner"
    with hooks.sessions() as session:
        row = session.get(Message, message_id)
        assert row is not None
        shape = message_out(row, "acme-plumbing").model_dump(mode="json")
    assert closed["data"] == shape, "one outside shape: the API's"


def test_each_call_back_recorded_is_an_event_and_a_repeated_unit_owes_it_once(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    hooks.add(receiver.url, "message.called_back")
    message_id = hooks.message()
    owner = _owner(hooks)
    for minutes in (0, 0, 5):  # the first unit runs twice (a retry): same instant, one event
        clock.advance(minutes=minutes)
        with transaction(hooks.sessions) as session:
            record_call_back(session, FlowStore(), owner, message_id, note=None,
                             via="portal", now=clock())  # fmt: skip
    hooks.run()
    assert len(receiver.wait_for(2)) == 2
    hooks.run()
    assert len(receiver.requests) == 2


def test_a_recording_is_offered_as_nightdesks_own_address_never_twilios(
    hooks: Hooks, receiver: WebhookReceiver
) -> None:
    hooks.add(receiver.url, "message.acknowledged")
    message_id = hooks.message()
    with transaction(hooks.sessions) as session:
        row = session.get(Message, message_id)
        assert row is not None
        row.recording_url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    hooks.acknowledge(message_id)
    hooks.run()
    (request,) = receiver.wait_for(1)
    assert b"twilio.com" not in request.body
    assert f'"recording_url":"/api/v1/messages/{message_id}/recording"'.encode() in request.body
