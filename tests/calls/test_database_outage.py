"""A database outage as the caller and Twilio live it: the voicemail still taken, every callback
answered, and nothing lost once the database is back.

The app's engine refuses every statement while the outage lasts (tests/support/outage.py). The
server's own thread is not started (no lifespan): the test runs the dispatcher's cycle itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call, CallEvent
from app.dispatch.models import Delivery
from app.messages.models import Message, MessageEvent
from app.settings import Settings
from app.telephony.sandbox.caller import Conversation, Say, SimulatedCaller
from tests.calls.conftest import ACME, CALLER
from tests.support.outage import Outage

pytestmark = pytest.mark.usefixtures("demo_clients")


@pytest.fixture
def twilio(app: FastAPI, settings: Settings) -> Iterator[TestClient]:
    """Twilio's requests into the app, without its lifespan: no dispatcher thread runs, so
    the test's `replay()` is the dispatcher's cycle (which, with RUN_DISPATCHER off, only
    replays the spool)."""
    try:
        yield TestClient(app, base_url=settings.public_url)
    finally:
        app.state.database.close()


def replay(app: FastAPI) -> int:
    """One cycle of the server's dispatcher; how many spooled callbacks it replayed."""
    replayed: int = app.state.dispatcher.run_once()
    return replayed


def call(twilio: TestClient, settings: Settings, *script: object, path: str) -> Conversation:
    return SimulatedCaller(
        twilio, public_url=settings.public_url, auth_token=settings.twilio_auth_token,
        account_sid=settings.twilio_account_sid, from_number=CALLER, to_number=ACME,
        script=script, voice_path=path,  # type: ignore[arg-type]
    ).run()  # fmt: skip


def messages(sessions: sessionmaker[Session]) -> list[Message]:
    with sessions() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def spooled(settings: Settings) -> list[Path]:
    return sorted(settings.spool_dir.glob("*.json"))


def test_a_voicemail_left_while_the_database_is_down_becomes_a_message_when_it_returns(
    app: FastAPI, twilio: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with Outage(app.state.engine) as outage:
        # Twilio's fallback URL: the voicemail that needs no database, then its callbacks.
        conversation = call(twilio, settings, Say("The boiler is leaking"), path="/twilio/fallback")
        assert outage.refused > 0, "the callbacks did reach the database, and were refused"
    assert "leave your name, number and a message" in conversation.heard()
    assert [status for _path, status in conversation.requests] == [200, 200, 204, 204, 204]
    assert messages(session_factory) == []
    assert len(spooled(settings)) == 3  # recording, transcription, call status

    replayed = replay(app)

    assert replayed == 3
    (message,) = messages(session_factory)
    assert message.caller == CALLER
    assert message.outcome == "voicemail"
    assert message.recording_url is not None
    assert message.recording_seconds is not None
    assert message.transcription == "The boiler is leaking"
    assert spooled(settings) == []


def test_a_replay_repeated_after_a_crash_changes_nothing(
    app: FastAPI, twilio: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with Outage(app.state.engine):
        call(twilio, settings, Say("Please call me back"), path="/twilio/fallback")
    kept = settings.spool_dir.parent / "kept"
    shutil.copytree(settings.spool_dir, kept)
    replay(app)
    before = story(session_factory)
    # The process died after each replay committed and before its file was deleted.
    shutil.rmtree(settings.spool_dir)
    shutil.copytree(kept, settings.spool_dir)

    assert replay(app) == 3

    assert story(session_factory) == before
    assert len(messages(session_factory)) == 1


def test_a_replay_the_database_still_refuses_keeps_its_file_and_its_place(
    app: FastAPI, twilio: TestClient, settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    with Outage(app.state.engine):
        call(twilio, settings, Say("Hello"), path="/twilio/fallback")
        assert replay(app) == 0
        assert len(spooled(settings)) == 3
    assert messages(session_factory) == []
    assert replay(app) == 3
    assert len(messages(session_factory)) == 1


def story(sessions: sessionmaker[Session]) -> tuple[int, ...]:
    """What the call, its message and its notifications amount to: counts a repeat would change."""
    with sessions() as session:
        timeline = session.scalar(select(func.count()).select_from(CallEvent))
        events = session.scalar(select(func.count()).select_from(MessageEvent))
        deliveries = session.scalar(select(func.count()).select_from(Delivery))
        calls = session.scalar(select(func.count()).select_from(Call))
        messages = session.scalar(select(func.count()).select_from(Message))
    return (timeline or 0, events or 0, deliveries or 0, calls or 0, messages or 0)
