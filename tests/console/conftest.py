"""The console's world: the demo clients, a fake Twilio over HTTP whose signed callbacks reach
the app, callers who wait in the queue in real time, and PAs signed in through the form."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.accounts.service import add_user, sign_in_link
from app.console.models import Presence, QueueEntry
from app.db import transaction
from app.messages.models import Message
from app.settings import Settings
from app.telephony.sandbox.caller import Conversation, SimulatedCaller
from app.telephony.sandbox.conversation import CallerInput, Press
from app.telephony.sandbox.fake_resources import CallRecord
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.switchboard import HttpSwitchboard
from app.telephony.sandbox.webhooks import new_sid
from tests.accounts.conftest import form_token
from tests.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.support.callbacks import ToTheApp

HARBOUR_LAW = "+61255501234"
CALLER = "+61491570999"
# 23:00 on a Thursday in Sydney: after hours, so "0" puts the caller in the assistants' queue.
SYDNEY_NIGHT = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
URGENT_CALLER = ("0",)  # the menu's "speak with someone now"


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
def ring(console_client: TestClient, settings: Settings, fake_twilio: FakeTwilio) -> Iterator[Ring]:
    """A caller rings a number and plays `script`, waiting in any queue for real. Callers still
    on the line when the test ends hang up."""
    callers: list[WaitingCaller] = []

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
        callers.append(waiting)
        return waiting

    yield start
    fake_twilio.lines.close()
    for caller in callers:
        caller.thread.join(10)
    fake_twilio.parties.wait_idle()


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


# --- PAs ------------------------------------------------------------------------------------------

PA_PHONE = "+15005550006"
OTHER_PA_PHONE = "+15005550007"


@dataclass
class Pa:
    """A PA (or supervisor) signed in through the form, with a browser of their own."""

    email: str
    user_id: int
    browser: TestClient

    def page(self, path: str) -> httpx.Response:
        response: httpx.Response = self.browser.get(path, follow_redirects=False)
        return response

    csrf_token: str = ""

    def press(self, path: str, **fields: str) -> httpx.Response:
        """Submit a form as a person would: with the session's CSRF token, as pages carry it."""
        if not self.csrf_token:
            self.csrf_token = form_token(self.browser.get("/console"))
        response: httpx.Response = self.browser.post(
            path, data={"csrf_token": self.csrf_token, **fields}, follow_redirects=False
        )
        return response

    def set_presence(self, state: str) -> None:
        assert self.press("/console/presence", state=state).status_code == 303

    def take(self, entry_id: int) -> httpx.Response:
        return self.press(f"/console/queue/{entry_id}/take")


AddPa = Callable[..., Pa]


@pytest.fixture
def add_pa(
    app: FastAPI,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    console_client: TestClient,
) -> Iterator[AddPa]:
    """A PA with a phone, signed in with a browser of their own (its own cookies)."""
    browsers: list[TestClient] = []

    def add(
        email: str = "sam@nightdesk.test", *, phone: str | None = PA_PHONE,
        role: Role = Role.pa, name: str = "Sam Taylor", available: bool = True,
        client: str | None = None,
    ) -> Pa:  # fmt: skip
        with transaction(session_factory) as session:
            user = add_user(
                session, email, role, clock(), name=name, phone=phone, client_slug=client
            )
            user_id, link = user.id, sign_in_link(session, user, clock())
        browser = TestClient(app, base_url=PUBLIC_URL)
        browsers.append(browser)
        page = browser.get(f"/login/link/{link}")
        signed_in = browser.post(
            f"/login/link/{link}", data={"csrf_token": form_token(page)}, follow_redirects=False
        )
        assert signed_in.status_code == 303
        pa = Pa(email, user_id, browser)
        if available:
            pa.set_presence("available")
        return pa

    yield add
    for browser in browsers:
        browser.close()


def entry_of(sessions: sessionmaker[Session], entry_id: int) -> QueueEntry:
    with sessions() as session:
        entry = session.get(QueueEntry, entry_id)
        assert entry is not None
        return entry


def presence_of(sessions: sessionmaker[Session], user_id: int) -> str:
    with sessions() as session:
        row = session.get(Presence, user_id)
        return row.state if row else "none"


def pa_phones_pick_up(fake: FakeTwilio, client: TestClient, *script: CallerInput) -> None:
    """PAs' phones (calls to /twilio/console/...) are picked up by a simulated PA who plays
    `script` (by default: presses 1)."""
    keys = list(script) or [Press("1")]

    def script_for(call: CallRecord) -> list[CallerInput] | None:
        return keys if "/twilio/console/" in (call.url or "") else None

    fake.parties.pick_up(script_for, client)


@dataclass
class Answered:
    """A PA on the phone with a caller who was waiting: the call is theirs."""

    pa: Pa
    caller: WaitingCaller
    entry_id: int


AnswerCall = Callable[..., Answered]


@pytest.fixture
def answered_call(
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
    console_client: TestClient,
    session_factory: sessionmaker[Session],
) -> AnswerCall:
    """A caller waits, a PA takes them, picks up and presses 1: they are talking."""

    def answer(*script: CallerInput, pa: Pa | None = None) -> Answered:
        pa_phones_pick_up(fake_twilio, console_client, Press("1"))
        pa = pa or add_pa()
        caller = ring(HARBOUR_LAW, *(script or (Press("0"),)))
        waiting = wait_for_entry(fake_twilio, session_factory, "waiting")
        entry_id = waiting[-1].id
        assert pa.take(entry_id).status_code == 303
        fake_twilio.wait_for(lambda: entry_of(session_factory, entry_id).status == "answered")
        return Answered(pa, caller, entry_id)

    return answer


def in_conference(fake: FakeTwilio, sessions: sessionmaker[Session], entry_id: int) -> None:
    """Waits until the caller has been moved in with the PA (moments after the call counts as
    answered) and their join has named the conference: transfers and supervisors can act."""
    fake.wait_for(lambda: entry_of(sessions, entry_id).conference_sid is not None)
