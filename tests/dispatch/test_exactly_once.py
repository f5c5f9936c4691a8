# ruff: noqa: F811 - the night shift's fixtures, imported by name, are parameters here
"""Exactly one notification per contact per step, even when a send's outcome is unknown: a
timeout after Twilio took the text, a look-up that fails, a worker that dies mid-send; and no
contact rung twice in one breath.

The night shift's fixtures (tests/dispatch/test_escalation.py): the fake Twilio over HTTP, the
dispatcher run by hand under a FakeClock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import transaction
from app.dispatch import sending
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.links import Links
from app.dispatch.models import Delivery
from app.dispatch.outbox import take_message
from app.dispatch.senders import make_senders
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.messages.models import Message
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.databases import postgres_server_url
from tests.dispatch.conftest import WatchedWaker
from tests.dispatch.test_escalation import (  # noqa: F401 - fixtures, used by name
    CALLER_MOBILE,
    SAM,
    callbacks,
    deliveries,
    dispatcher,
    fake_twilio,
    inbox,
    leave_message,
    settings,
    texts_to,
)
from tests.support.callbacks import ToTheApp

LANDLINES = ["+441134960901", "+441134960902", "+441134960903"]  # no texts to the callers


def impatient(dispatcher: Dispatcher, settings: Settings) -> None:
    """Give up on Twilio after 0.3 s, so a late answer is a timeout whose outcome is unknown."""
    dispatcher.senders = make_senders(settings.model_copy(update={"twilio_timeout": 0.3}))
    dispatcher.__post_init__()


def refs_in(text: str) -> list[str]:
    return re.findall(r"#([0-9A-Z]+)", text)


def test_a_bundle_whose_outcome_is_unknown_goes_again_exactly_as_it_was(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings, callbacks: ToTheApp,
) -> None:  # fmt: skip
    """The issue's duplicate: "#3, #6" timed out, then went again as "#9, #3" and was not
    recognised. The retry must be the very same text, and Twilio's copy of it is found."""
    impatient(dispatcher, settings)
    callbacks.client = None  # Twilio's status callbacks are late: only a look-up can tell
    leave_message(caller=LANDLINES[0])
    leave_message(caller=LANDLINES[1])
    fake_twilio.delay_next(3.0, path_contains="/Messages.json")  # taken, answered too late
    dispatcher.run_once()
    (bundle,) = texts_to(fake_twilio, SAM)
    assert len(refs_in(bundle)) == 2
    leave_message(caller=LANDLINES[2])  # a third message arrives while the first is in doubt

    clock.advance(seconds=5)
    dispatcher.run_once()
    clock.advance(seconds=61)
    dispatcher.run_once()

    texts = texts_to(fake_twilio, SAM)
    assert texts[0] == bundle
    told = [ref for text in texts for ref in refs_in(text)]
    assert sorted(told) == sorted(set(told)), f"a message reached Sam twice: {texts}"
    assert len(set(told)) == 3
    assert len(look_ups(fake_twilio)) == 1


def test_a_text_in_doubt_goes_again_in_its_first_words_though_the_message_has_grown(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings, callbacks: ToTheApp,
) -> None:  # fmt: skip
    """The voicemail's transcription lands between the attempts: a text written afresh would
    say more, and Twilio's copy of the first would not be recognised."""
    impatient(dispatcher, settings)
    callbacks.client = None
    message_id = leave_message(caller=LANDLINES[0])
    fake_twilio.delay_next(3.0, path_contains="/Messages.json")
    dispatcher.run_once()
    with transaction(dispatcher.database.sessions) as session:
        session.get_one(Message, message_id).transcription = "The boiler is leaking badly"

    clock.advance(seconds=5)
    dispatcher.run_once()

    (text,) = texts_to(fake_twilio, SAM)
    assert "boiler" not in text
    (sam,) = [d for d in deliveries(dispatcher, message_id) if d.address == SAM]
    assert sam.status in ("sent", "delivered")


def test_twilios_status_callback_for_a_bundle_in_doubt_settles_every_message_in_it(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings,
) -> None:  # fmt: skip
    impatient(dispatcher, settings)
    first, second = leave_message(caller=LANDLINES[0]), leave_message(caller=LANDLINES[1])
    fake_twilio.delay_next(3.0, path_contains="/Messages.json")
    dispatcher.run_once()
    fake_twilio.settle()  # its "sent" and "delivered" callbacks name the bundle's first delivery

    statuses = {d.status for m in (first, second) for d in deliveries(dispatcher, m)}
    assert statuses == {"delivered"}
    clock.advance(seconds=5)
    dispatcher.run_once()
    assert look_ups(fake_twilio) == []
    assert len(texts_to(fake_twilio, SAM)) == 1


def test_a_look_up_that_fails_keeps_the_doubt_until_one_answers(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings, callbacks: ToTheApp,
) -> None:  # fmt: skip
    impatient(dispatcher, settings)
    callbacks.client = None
    message_id = leave_message(caller=LANDLINES[0])
    fake_twilio.delay_next(3.0, path_contains="/Messages.json")
    dispatcher.run_once()  # Twilio has the text; we saw a timeout
    fake_twilio.fail_next(1, status=500, path_contains="/Messages.json")
    clock.advance(seconds=5)
    dispatcher.run_once()  # the look-up answers 500: still nobody knows
    clock.advance(seconds=10)
    dispatcher.run_once()

    assert len(texts_to(fake_twilio, SAM)) == 1
    (sam,) = [d for d in deliveries(dispatcher, message_id) if d.address == SAM]
    assert sam.status in ("sent", "delivered")
    assert sam.provider_sid == fake_twilio.messages[0].sid


def test_a_text_twilio_refused_outright_may_be_bundled_afresh(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock,
) -> None:  # fmt: skip
    """A 429 is a definite answer: nothing reached anyone, so the retry carries what is owed
    by then (and needs no look-up)."""
    leave_message(caller=LANDLINES[0])
    fake_twilio.fail_next(1, status=429, path_contains="/Messages.json")
    dispatcher.run_once()
    leave_message(caller=LANDLINES[1])
    clock.advance(seconds=5)
    dispatcher.run_once()

    (text,) = texts_to(fake_twilio, SAM)
    assert len(refs_in(text)) == 2
    assert not [r for r in fake_twilio.requests if r.method == "GET"], "no look-up was needed"


def test_a_batch_limit_never_splits_a_doubtful_send(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings, callbacks: ToTheApp,
) -> None:  # fmt: skip
    impatient(dispatcher, settings)
    callbacks.client = None  # Twilio's status callbacks are late: only a look-up can tell
    for caller in LANDLINES:
        leave_message(caller=caller)
    fake_twilio.delay_next(3.0, path_contains="/Messages.json")
    dispatcher.run_once()
    dispatcher.sending.batch = 2
    clock.advance(seconds=5)
    dispatcher.run_once()
    dispatcher.run_once()

    assert len(texts_to(fake_twilio, SAM)) == 1
    assert len(look_ups(fake_twilio)) == 1, "the three went again as one send"
    sids = {d.provider_sid for m in (1, 2, 3) for d in deliveries(dispatcher, m)}
    assert sids == {fake_twilio.messages[0].sid}


@pytest.mark.skipif(postgres_server_url() is None, reason="SQLite has one writer: no race")
def test_a_second_worker_cannot_take_part_of_a_doubtful_send_another_holds(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    clock: FakeClock, settings: Settings, callbacks: ToTheApp, app: FastAPI,
) -> None:  # fmt: skip
    """Only a send's first open delivery can be claimed, and it brings the rest: while another
    worker holds the first (its claim not yet committed), nothing of the send is claimable."""
    impatient(dispatcher, settings)
    callbacks.client = None
    for caller in LANDLINES[:2]:
        leave_message(caller=caller)
    fake_twilio.delay_next(3.0, path_contains="/Messages.json")
    dispatcher.run_once()
    clock.advance(seconds=5)
    first = min(d.id for d in deliveries(dispatcher, 1) if d.address == SAM)
    other = Dispatcher(app.state.database, FlowStore(), make_senders(settings),
                       Links(settings.public_url, settings.secret_key, clock), clock)  # fmt: skip
    claimer = other.modules[-1]
    assert isinstance(claimer, sending.SendDeliveries)
    with transaction(app.state.database.sessions) as holding:
        holding.execute(select(Delivery).where(Delivery.id == first).with_for_update())
        with transaction(app.state.database.sessions) as session:
            assert claimer._claim(session, clock()).taken == 0


def test_a_claim_cut_short_by_busy_senders_goes_on_as_soon_as_one_is_free(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Every sender waiting on Twilio: a claim takes only what they can start, and the rest
    goes as soon as one is free, not at the dispatcher's next look (a minute, here)."""
    monkeypatch.setattr(sending, "SENDERS", 1)
    dispatcher.__post_init__()  # its sending module with one sender
    texts = [threading.Event(), threading.Event()]
    fake_twilio.on_message = lambda _sms: next(t for t in texts if not t.is_set()).set()
    released = fake_twilio.hold_next(path_contains="/Messages.json")
    leave_message(caller=CALLER_MOBILE)  # Sam's text and the caller's, both due now
    dispatcher.waker, dispatcher.poll = WatchedWaker(), 60
    stop = threading.Event()
    loop = threading.Thread(target=dispatcher.run_forever, args=(stop,))
    loop.start()
    try:
        assert texts[0].wait(timeout=10), "one sender: one text started, its answer held"
        assert dispatcher.waker.waiting.wait(timeout=10)
        assert not texts[1].is_set()
        released.set()
        assert texts[1].wait(timeout=10), "the other text waited for the next look"
    finally:
        stop.set()
        dispatcher.waker.wake()
        loop.join(timeout=10)


def look_ups(fake: FakeTwilio) -> list[object]:
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith("/Messages.json")]


PHONE_FIRST = """
    client: phone-first
    name: Phone First Heating
    numbers: ["+441134960850"]
    timezone: Europe/London
    caller_updates: false
    contacts:
      - {id: dana, name: Dana Cole, phone: "+447911222333", channels: [voice]}
    escalation:
      steps:
        - {notify: dana, wait_minutes: 10}
    steps:
      take:
        type: take_message
"""
DANA = "+447911222333"


def test_three_messages_at_once_ring_a_contact_once_and_the_next_call_waits_its_minute(
    dispatcher: Dispatcher, fake_twilio: FakeTwilio, clock: FakeClock,
    load_client: Callable[[str], None], session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    load_client(PHONE_FIRST)
    for caller in LANDLINES:
        leave_for(session_factory, "phone-first", caller, clock)

    dispatcher.run_once()
    assert len(calls_to(fake_twilio, DANA)) == 1
    clock.advance(seconds=59)
    dispatcher.run_once()
    assert len(calls_to(fake_twilio, DANA)) == 1
    clock.advance(seconds=1)
    dispatcher.run_once()
    assert len(calls_to(fake_twilio, DANA)) == 2


def calls_to(fake: FakeTwilio, number: str) -> list[object]:
    return [c for c in fake.calls if c.to == number]


def leave_for(sessions: sessionmaker[Session], slug: str, caller: str, clock: FakeClock) -> int:
    """A message for `slug`, saved as a call saves it."""
    with transaction(sessions) as session:
        client = session.scalars(select(Client).where(Client.slug == slug)).one()
        assert client.active_flow_id is not None
        flow = FlowStore().get(session, client.active_flow_id)
        call = Call(sid=f"CA{caller[1:]:0>32}", client_id=client.id, caller=caller,
                    called=flow.numbers[0], flow_version_id=client.active_flow_id, state={},
                    started_at=clock())  # fmt: skip
        session.add(call)
        session.flush()
        save = SaveMessage(urgency=Urgency.urgent, answers={"name": "Jo"}, outcome="message")
        message = take_message(session, call, flow, save, {}, clock())
        assert message is not None
        return message.id


def test_a_stalled_request_to_one_contact_holds_up_nobody_else(
    dispatcher: Dispatcher, leave_message: Callable[..., int], fake_twilio: FakeTwilio,
) -> None:  # fmt: skip
    """Sends go concurrently, each recorded as soon as it is known: the caller's text is
    recorded as sent while Twilio still sits on its answer for Sam's (whose callbacks may
    come first: the fake took the text)."""
    released = fake_twilio.hold_next(to=SAM)  # Twilio takes Sam's text and holds its answer
    message_id = leave_message(caller=CALLER_MOBILE)

    dispatcher.cycle()  # starts both sends and returns
    assert dispatcher.sending.wait_until(in_flight=1, timeout=10)

    by_address = {d.address: d for d in deliveries(dispatcher, message_id)}
    assert by_address[CALLER_MOBILE].sent_at is not None
    assert by_address[SAM].sent_at is None
    assert dispatcher.cycle() == 0, "the next claim did not wait for it either"
    released.set()
    assert dispatcher.sending.wait_until(in_flight=0, timeout=10)
    (sam,) = [d for d in deliveries(dispatcher, message_id) if d.address == SAM]
    assert sam.status in ("sent", "delivered")
    assert len(texts_to(fake_twilio, SAM)) == 1
