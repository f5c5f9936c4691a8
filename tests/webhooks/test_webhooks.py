"""From the client's side: its own system receives an event when a message is taken and when it
is acknowledged, signed so a Standard Webhooks library verifies it; a receiver that refuses is
retried on a backoff, and one that fails for a day is paused and the client told by email."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import WebhookVerificationError

from app.db import transaction
from app.messages.models import Message
from app.webhooks.events import message_event
from app.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.clock import FakeClock
from tests.support.receiver import WebhookReceiver
from tests.support.smtp import SmtpInbox
from tests.webhooks.conftest import OLIVE, Hooks, real_now, verified


def test_the_clients_system_hears_of_a_message_taken_and_acknowledged_and_can_verify_both(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    clock.set(real_now())
    _, secret = hooks.add(receiver.url)
    message_id = hooks.message(name="Jo Bloggs", reason="Boiler leaking")
    hooks.run()
    (taken,) = receiver.wait_for(1)
    event = verified(secret, taken)
    assert event["type"] == "message.taken"
    assert event["data"]["id"] == message_id
    assert event["data"]["client"] == "acme-plumbing"
    assert event["data"]["answers"] == {"name": "Jo Bloggs", "reason": "Boiler leaking"}
    assert event["data"]["urgency"] == "urgent"
    assert taken.headers["webhook-signature"].startswith("v1,")
    assert taken.headers["content-type"] == "application/json"

    hooks.acknowledge(message_id, by="Sam Taylor")
    hooks.run()
    acknowledged = receiver.wait_for(2)[1]
    event = verified(secret, acknowledged)
    assert event["type"] == "message.acknowledged"
    assert event["data"]["acknowledged_by"] == "Sam Taylor"
    assert acknowledged.headers["webhook-id"] != taken.headers["webhook-id"]

    hooks.run()
    assert len(receiver.requests) == 2, "each event once"


def test_a_forged_or_tampered_event_fails_the_receivers_check(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    clock.set(real_now())
    _, secret = hooks.add(receiver.url)
    _, other_secret = hooks.add(receiver.url + "/other")
    hooks.message()
    hooks.run()
    request = next(r for r in receiver.wait_for(2) if r.path.endswith("nightdesk"))
    verified(secret, request)
    with pytest.raises(WebhookVerificationError):
        verified(other_secret, request)
    tampered = type(request)(
        request.path, request.headers, request.body.replace(b"urgent", b"routine")
    )
    with pytest.raises(WebhookVerificationError):
        verified(secret, tampered)


def test_an_endpoint_gets_only_the_events_it_asked_for(
    hooks: Hooks, receiver: WebhookReceiver
) -> None:
    hooks.add(receiver.url, "message.acknowledged")
    message_id = hooks.message()
    hooks.run()
    assert receiver.requests == []
    hooks.acknowledge(message_id)
    hooks.run()
    (request,) = receiver.wait_for(1)
    assert b'"type":"message.acknowledged"' in request.body


def test_an_event_is_owed_in_the_transaction_of_the_change_it_reports(
    hooks: Hooks, receiver: WebhookReceiver
) -> None:
    hooks.add(receiver.url)
    message_id = hooks.message()  # committed: its event is owed before any dispatcher runs
    with hooks.sessions() as session:
        (owed,) = session.scalars(select(WebhookDelivery)).all()
    assert (owed.event_type, owed.status) == ("message.taken", "pending")

    def acknowledge_then_fail() -> None:
        with transaction(hooks.sessions) as session:
            message = session.get(Message, message_id)
            assert message is not None
            message_event(session, message, "message.acknowledged", hooks.clock())
            raise RuntimeError("the acknowledgement's transaction failed")

    with pytest.raises(RuntimeError):
        acknowledge_then_fail()
    with hooks.sessions() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == 1


def test_a_receiver_that_refuses_is_retried_with_backoff_with_the_same_webhook_id(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    hooks.add(receiver.url)
    receiver.refuse(2, status=500)
    hooks.message()
    hooks.run()
    receiver.wait_for(1)
    clock.advance(seconds=4)
    hooks.run()
    assert len(receiver.requests) == 1, "the first retry waits 5 seconds"
    clock.advance(seconds=1)
    hooks.run()
    receiver.wait_for(2)
    clock.advance(minutes=4)
    hooks.run()
    assert len(receiver.requests) == 2, "the second waits 5 minutes"
    clock.advance(minutes=1)
    hooks.run()
    requests = receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.headers["webhook-timestamp"] for r in requests}) == 3
    with hooks.sessions() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
        endpoint = session.scalars(select(WebhookEndpoint)).one()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 204)
    assert endpoint.failing_since is None


def test_a_url_failing_for_a_day_is_paused_and_the_client_told_then_resumed(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock, inbox: SmtpInbox
) -> None:
    endpoint_id, _ = hooks.add(receiver.url)
    receiver.refuse(100, status=503)
    hooks.message()
    for _ in range(40):  # the dispatcher's next day and a bit, an hour at a time
        hooks.run()
        with hooks.sessions() as session:
            endpoint = session.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None
        if endpoint.paused_at is not None:
            break
        clock.advance(hours=1)
    assert endpoint is not None
    assert endpoint.paused_at is not None
    assert endpoint.last_error == "HTTP 503"
    # At 0, 5 s, 5 min, 30 min, 2 h, 5 h and 10 h after each failure; a day had then passed.
    attempts = len(receiver.requests)
    assert attempts == 8
    hooks.run()  # the deliveries module sends the email the pause queued
    (notice,) = inbox.wait_for(1)
    assert notice["To"] == OLIVE
    assert "paused" in notice["Subject"]
    assert receiver.url in notice.get_content()

    hooks.message()  # while paused, events wait
    clock.advance(hours=12)
    hooks.run()
    assert len(receiver.requests) == attempts

    from app.webhooks.service import resume_endpoint

    receiver.accept_all()
    with transaction(hooks.sessions) as session:
        assert resume_endpoint(session, endpoint_id, clock()) == 2, "the missed events too"
    hooks.run()
    assert len(receiver.wait_for(attempts + 2)) == attempts + 2


def test_an_event_refused_for_a_day_while_others_arrive_is_given_up_and_the_url_stays_on(
    hooks: Hooks, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    endpoint_id, _ = hooks.add(receiver.url, "message.taken")
    receiver.refuse_containing = b"Mallory"
    hooks.message(name="Mallory")
    for _ in range(30):  # a day and more, with the URL taking every other event meanwhile
        hooks.message(name="Jo")
        hooks.run()
        clock.advance(hours=1)
    hooks.run()
    with hooks.sessions() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        refused = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.status != "delivered")
        ).one()
    assert endpoint is not None
    assert endpoint.paused_at is None
    assert (refused.status, refused.attempts, refused.response_status) == ("failed", 8, 400)
    assert sum(b"Mallory" in r.body for r in receiver.requests) == 8


def test_two_dispatchers_racing_post_each_event_once(
    hooks: Hooks, receiver: WebhookReceiver, settings, clock: FakeClock, fake_twilio
) -> None:
    import threading

    from app.clients.flows import FlowStore
    from app.db import make_database
    from app.dispatch.dispatcher import make_dispatcher

    hooks.add(receiver.url)
    for _ in range(5):
        hooks.message()
    sending = settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})
    other = make_dispatcher(sending, make_database(settings.database_url), FlowStore(), clock)
    barrier = threading.Barrier(2)

    def work(dispatcher) -> None:
        barrier.wait()
        for _ in range(3):
            dispatcher.run_once()

    threads = [threading.Thread(target=work, args=(d,)) for d in (hooks.dispatcher, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests = receiver.wait_for(5)
    assert len(requests) == 5
    assert len({r.headers["webhook-id"] for r in requests}) == 5
