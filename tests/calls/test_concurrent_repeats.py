"""Twilio's retries can race the original request; the call's row lock makes the second a repeat."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call, CallEvent
from app.calls.service import Urls
from app.calls.webhooks import VoiceWebhook
from app.db import transaction
from tests.calls.conftest import ACME, CALLER
from tests.clock import FakeClock

pytestmark = pytest.mark.usefixtures("demo_clients")


def test_two_copies_of_one_step_arriving_together_advance_the_call_once(
    app: FastAPI, clock: FakeClock, session_factory: sessionmaker[Session]
) -> None:
    calls = app.state.calls
    urls = Urls("https://nightdesk.test")
    hook = VoiceWebhook.parse({"CallSid": "CA" + "7" * 32, "From": CALLER, "To": ACME})
    with transaction(app.state.session_factory) as session:
        calls.answer(session, hook, urls, clock())
    pressed = VoiceWebhook.parse({**hook.__dict__, "CallSid": hook.call_sid, "Digits": "2"})

    def take_step(_: int) -> str:
        with transaction(app.state.session_factory) as session:
            twiml: str = calls.step(session, pressed, 1, False, urls, clock())
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
