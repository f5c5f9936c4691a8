"""The console's world: the demo clients, a fake Twilio over HTTP whose signed callbacks reach
the app, callers who wait in the queue in real time, and PAs signed in through the form."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.console.models import QueueEntry
from app.messages.models import Message
from app.settings import Settings
from app.telephony.sandbox.caller import Conversation, SimulatedCaller
from app.telephony.sandbox.conversation import CallerInput
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.switchboard import HttpSwitchboard
from app.telephony.sandbox.webhooks import new_sid
from tests.clock import FakeClock

HARBOUR_LAW = "+61255501234"
CALLER = "+61491570999"
# 23:00 on a Thursday in Sydney: after hours, so "0" puts the caller in the assistants' queue.
SYDNEY_NIGHT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
URGENT_CALLER = ("0",)  # the menu's "speak with someone now"


class ToTheApp:
    """Where the fake sends its signed callbacks: into the app under test."""

    client: TestClient | None = None

    def __call__(self, url: str, params: dict[str, str], headers: dict[str, str]) -> None:
        if self.client is not None:  # after the test, late callbacks have nowhere to go
            self.client.post(url, data=params, headers=headers)


@pytest.fixture
def callbacks() -> ToTheApp:
    return ToTheApp()


@pytest.fixture
def fake_twilio(settings: Settings, callbacks: ToTheApp) -> Iterator[FakeTwilio]:
    token = settings.twilio_auth_token
    with FakeTwilio(settings.twilio_account_sid, token, deliver=callbacks) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})


@pytest.fixture
def console_client(
    client: TestClient,
    callbacks: ToTheApp,
    fake_twilio: FakeTwilio,
    demo_clients: None,
    clock: FakeClock,
) -> Iterator[TestClient]:
    """The app with the demo clients, Twilio's callbacks reaching it, at night in Sydney."""
    clock.set(SYDNEY_NIGHT)
    callbacks.client = client
    yield client
    fake_twilio.lines.close()  # callers still waiting hang up
    fake_twilio.settle()
    callbacks.client = None


@dataclass
class WaitingCaller:
    """A caller on a thread of their own: they wait in the queue in real time."""

    call_sid: str
    thread: threading.Thread
    result: list[Conversation] = field(default_factory=list)

    def conversation(self, timeout: float = 20.0) -> Conversation:
        """The call, once it is over."""
        self.thread.join(timeout)
        assert self.result, "the caller's call did not end"
        return self.result[0]


Ring = Callable[..., WaitingCaller]


@pytest.fixture
def ring(console_client: TestClient, settings: Settings, fake_twilio: FakeTwilio) -> Ring:
    """A caller rings a number and plays `script`, waiting in any queue for real."""

    def start(
        to: str = HARBOUR_LAW, *script: CallerInput, hold_wait: float = 20.0, **options: object
    ) -> WaitingCaller:
        sid = new_sid("CA")
        switchboard = HttpSwitchboard(
            fake_twilio.base_url, settings.twilio_account_sid, settings.twilio_auth_token
        )
        caller = SimulatedCaller(
            console_client, public_url=settings.public_url,
            auth_token=settings.twilio_auth_token, account_sid=settings.twilio_account_sid,
            from_number=str(options.pop("from_number", CALLER)), to_number=to, script=script,
            call_sid=sid, switchboard=switchboard, hold_wait=hold_wait,
            **options,  # type: ignore[arg-type]
        )  # fmt: skip
        waiting = WaitingCaller(sid, threading.Thread(daemon=True, target=lambda: None))

        def play() -> None:
            try:
                waiting.result.append(caller.run())
            finally:
                switchboard.close()

        waiting.thread = threading.Thread(target=play, daemon=True, name="waiting-caller")
        waiting.thread.start()
        return waiting

    return start


def entries(sessions: sessionmaker[Session]) -> list[QueueEntry]:
    with sessions() as session:
        return list(session.scalars(select(QueueEntry).order_by(QueueEntry.id)))


def messages(sessions: sessionmaker[Session]) -> list[Message]:
    with sessions() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def wait_for_entry(
    fake: FakeTwilio, sessions: sessionmaker[Session], status: str, count: int = 1
) -> list[QueueEntry]:
    """The queue entries, once `count` of them have `status` (polled, never slept on)."""

    def found() -> list[QueueEntry]:
        rows = entries(sessions)
        return rows if sum(e.status == status for e in rows) >= count else []

    return fake.wait_for(found, timeout=10)
