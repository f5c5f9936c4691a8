"""Twilio's retries can race the original request; the call's row lock makes the second a repeat."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call, CallEvent
from app.calls.service import Urls
from app.calls.webhooks import VoiceWebhook
from app.db import transaction
from app.settings import Settings
from app.telephony.sandbox.signing import SIGNATURE_HEADER, sign
from tests.calls.conftest import ACME, CALLER
from tests.clock import FakeClock
from tests.support.locks import Racer

pytestmark = pytest.mark.usefixtures("demo_clients")


def test_two_copies_of_one_step_arriving_together_advance_the_call_once(
    app: FastAPI, clock: FakeClock, session_factory: sessionmaker[Session]
) -> None:
    calls = app.state.calls
    urls = Urls("https://nightdesk.test")
    hook = VoiceWebhook.parse({"CallSid": "CA" + "7" * 32, "From": CALLER, "To": ACME})
    database = app.state.database
    database.run_blocking(lambda session: calls.answer(session, hook, urls, clock()))
    pressed = VoiceWebhook.parse({**hook.__dict__, "CallSid": hook.call_sid, "Digits": "2"})

    def take_step(_: int) -> str:
        """As another process would: its own transaction, meeting the others at the lock."""
        twiml: str = database.run_blocking(
            lambda session: calls.step(session, pressed, 1, False, urls, clock())
        )
        return twiml

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(take_step, range(8)))

    assert len(set(answers)) == 1
    with session_factory() as session:
        call = session.scalars(select(Call)).one()
        heard = session.scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.kind == "heard")
        )
    assert call.turn == 2
    assert heard == 1


def test_a_step_repeated_while_the_first_is_being_stored_waits_for_it_and_is_a_repeat(
    app: FastAPI, clock: FakeClock, session_factory: sessionmaker[Session]
) -> None:
    """PostgreSQL: the second copy waits at the call's row lock, then finds the turn taken.
    Reading the call without the lock, it would advance from the state the first replaced."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's one writer never runs two turns at once")
    calls, sessions = app.state.calls, app.state.database.sessions
    urls = Urls("https://nightdesk.test")
    hook = VoiceWebhook.parse({"CallSid": "CA" + "8" * 32, "From": CALLER, "To": ACME})
    with transaction(sessions) as session:
        calls.answer(session, hook, urls, clock())
    pressed = VoiceWebhook.parse({**hook.__dict__, "CallSid": hook.call_sid, "Digits": "2"})

    def take_step(session: Session) -> str:
        twiml: str = calls.step(session, pressed, 1, False, urls, clock())
        return twiml

    with transaction(sessions) as session:
        first = take_step(session)
        repeat = Racer(sessions, take_step)
        repeat.wait_until_blocked()

    assert repeat.result() == first
    with session_factory() as session:
        call = session.scalars(select(Call)).one()
        kinds = session.scalars(select(CallEvent.kind).order_by(CallEvent.id)).all()
    assert call.turn == 2
    assert kinds.count("heard") == 1


def test_thirty_callers_ringing_at_once_each_hear_their_greeting_and_their_calls_are_kept(
    app: FastAPI, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    """Webhooks that reach the server together (on SQLite they share one transaction, see
    SqliteWriter) are each answered for their own call, and each call is stored once,
    whatever Twilio repeats."""
    sids = [f"CA{n:032d}" for n in range(30)]

    async def ring_together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.public_url) as http:

            async def ring(sid: str) -> httpx.Response:
                form = {"CallSid": sid, "From": CALLER, "To": ACME, "CallStatus": "ringing"}
                url = settings.public_url + "/twilio/voice"
                signature = sign(url, form, settings.twilio_auth_token)
                return await http.post(url, data=form, headers={SIGNATURE_HEADER: signature})

            return await asyncio.gather(*(ring(sid) for sid in [*sids, *sids[:5]]))

    answers = asyncio.run(ring_together())

    assert all(a.status_code == 200 and "turn=1" in a.text for a in answers)
    assert [a.text for a in answers[30:]] == [a.text for a in answers[:5]]  # repeats: same answer
    with session_factory() as session:
        stored = session.scalars(select(Call.sid).order_by(Call.sid)).all()
    assert stored == sids
