"""The screen pop: what a PA reads while the caller is with them, and the message they take,
which is dispatched exactly as a flow's message is."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import transaction
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.links import Links
from app.dispatch.models import Delivery
from app.dispatch.outbox import take_message
from app.dispatch.senders import make_senders
from app.flows.engine import SaveMessage
from app.flows.schema import Urgency
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.console.conftest import CALLER, AnswerCall, entry_of, messages, presence_of


def earlier_message(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    """The same caller rang Harbour Law last week and left a message."""
    with transaction(sessions) as session:
        client = session.scalars(select(Client).where(Client.slug == "harbour-law")).one()
        assert client.active_flow_id is not None
        flow = FlowStore().get(session, client.active_flow_id)
        call = Call(sid="CA" + "e" * 32, client_id=client.id, caller=CALLER,
                    called="+61255501234", flow_version_id=client.active_flow_id, state={},
                    started_at=clock() - dt.timedelta(days=7))  # fmt: skip
        session.add(call)
        session.flush()
        save = SaveMessage(Urgency.routine, {"name": "Jo Citizen", "matter": "Lease renewal"},
                           "message")  # fmt: skip
        take_message(session, call, flow, save, {}, clock() - dt.timedelta(days=7))


def test_the_screen_pop_shows_the_clients_script_the_on_call_lawyer_and_earlier_messages(
    answered_call: AnswerCall, session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    earlier_message(session_factory, clock)
    call = answered_call()

    page = call.pa.page(f"/console/calls/{call.entry_id}").text

    # 23:00 in Sydney: evening, for the caller.
    assert "Good evening, Harbour Law, Sam speaking. How may I help?" in page
    assert "Never give legal advice." in page
    assert "James O&#39;Brien, +61491570157" in page
    assert "Lease renewal" in page
    assert CALLER in page  # answered: the number is shown in full
    for label in ("Caller is", "Name", "Callback", "Matter", "Message", "Urgency"):
        assert f">{label}</label>" in page
    assert '<option value="urgent" selected>urgent</option>' in page  # what the caller chose


def test_a_number_that_cannot_be_called_back_is_refused_with_a_reason(
    answered_call: AnswerCall, session_factory: sessionmaker[Session]
) -> None:
    call = answered_call()

    refused = call.pa.press(
        f"/console/calls/{call.entry_id}/message", name="Jo Citizen", callback="12",
        message="Please ring back", urgency="urgent",
    )  # fmt: skip

    assert refused.status_code == 422
    assert "That isn&#39;t a phone number we can call back" in refused.text
    assert 'value="Jo Citizen"' in refused.text  # what the PA typed is kept
    assert messages(session_factory) == []


def test_the_pas_message_is_dispatched_as_a_flows_message_is_then_wrap_up_and_back(
    answered_call: AnswerCall,
    app: FastAPI,
    settings: Settings,
    fake_twilio: FakeTwilio,
    clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:
    call = answered_call()

    saved = call.pa.press(
        f"/console/calls/{call.entry_id}/message", caller_is="existing", name="Jo Citizen",
        callback="0491 570 156", matter="Settlement tomorrow", urgency="urgent",
        message="Needs the contract before 9 am",
    )  # fmt: skip

    assert saved.status_code == 303
    (message,) = messages(session_factory)
    assert (message.outcome, message.urgency, message.caller) == ("message", "urgent", CALLER)
    assert message.answers == {
        "caller_is": "existing", "name": "Jo Citizen", "callback": "+61491570156",
        "matter": "Settlement tomorrow", "message": "Needs the contract before 9 am",
    }  # fmt: skip
    assert entry_of(session_factory, call.entry_id).message_id == message.id
    assert presence_of(session_factory, call.pa.user_id) == "wrap_up"

    # The dispatcher sends what is owed, as for any message: the lawyer on duty is texted and
    # rung (urgent), and the caller gets a receipt.
    dispatcher = Dispatcher(
        database=app.state.database, flows=FlowStore(), senders=make_senders(settings),
        links=Links(settings.public_url, settings.secret_key, clock), clock=clock,
    )  # fmt: skip
    dispatcher.run_once()
    texts = {m.to: m.body for m in fake_twilio.messages}
    assert "+61491570157" in texts  # James O'Brien, on call this week
    assert CALLER in texts
    with session_factory() as session:
        kinds = {d.kind for d in session.scalars(select(Delivery))}
    assert kinds == {"notify", "caller_update"}

    page = call.pa.page(f"/console/calls/{call.entry_id}").text
    assert f"Message #{message.id} saved" in page
    done = call.pa.press(f"/console/calls/{call.entry_id}/wrap-up", notes="Promised a call by 9")
    assert done.headers["location"] == "/console"
    assert entry_of(session_factory, call.entry_id).notes == "Promised a call by 9"
    assert presence_of(session_factory, call.pa.user_id) == "available"
