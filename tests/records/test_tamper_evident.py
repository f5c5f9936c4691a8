"""A message's timeline is hash-chained: editing, removing or forking it afterwards shows."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.acks.service import acknowledge
from app.clients.flows import FlowStore
from app.db import make_engine, make_session_factory, transaction
from app.messages.chain import Broken, ChainedEvent, Intact, event_hash, verify_chain
from app.messages.models import Message, MessageEvent
from app.messages.service import attach_transcription
from app.messages.timeline import add_event, verify_timeline
from tests.clock import FakeClock
from tests.databases import TEST_DATABASE_URL
from tests.support.cli import nightdesk
from tests.support.clients import Clients, bearer
from tests.support.clients import clients as clients
from tests.support.locks import Racer
from tests.test_migrations import ALEMBIC_INI

AT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


def chain_of(*kinds: str, message_id: int = 7) -> list[ChainedEvent]:
    events: list[ChainedEvent] = []
    prev: str | None = None
    for seq, kind in enumerate(kinds, start=1):
        at = AT + dt.timedelta(minutes=seq)
        digest = event_hash(message_id, seq, at, kind, {"n": seq}, prev)
        events.append(ChainedEvent(seq * 10, message_id, seq, at, kind, {"n": seq}, prev, digest))
        prev = digest
    return events


# --- the pure check ----------------------------------------------------------------------------


def test_a_chain_as_written_is_intact_and_ends_at_its_head() -> None:
    events = chain_of("taken", "queued", "sent")
    assert verify_chain(events, 3, events[-1].hash) == Intact(3, events[-1].hash)
    assert verify_chain([], 0, None) == Intact(0, None)


def test_an_edited_event_is_named() -> None:
    events = chain_of("taken", "queued", "sent")
    edited = ChainedEvent(**{**events[1].__dict__, "detail": {"n": 99}})
    verdict = verify_chain([events[0], edited, events[2]], 3, events[2].hash)
    assert isinstance(verdict, Broken)
    assert (verdict.seq, verdict.event_id) == (2, 20)
    assert "altered" in verdict.reason


def test_the_hash_covers_when_and_which_message() -> None:
    event = chain_of("taken")[0]
    for change in ({"at": AT + dt.timedelta(seconds=1)}, {"message_id": 8}, {"kind": "closed"}):
        moved = ChainedEvent(**{**event.__dict__, **change})
        assert isinstance(verify_chain([moved], 1, event.hash), Broken)


def test_the_same_instant_in_another_zone_hashes_the_same() -> None:
    """PostgreSQL hands back aware instants, SQLite naive UTC ones: both mean one instant."""
    naive = AT.replace(tzinfo=None)
    paris = AT.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert event_hash(1, 1, naive, "k", {}, None) == event_hash(1, 1, paris, "k", {}, None)


def test_a_removed_event_is_named_in_the_middle_and_at_the_end() -> None:
    events = chain_of("taken", "queued", "sent")
    middle = verify_chain([events[0], events[2]], 3, events[2].hash)
    assert isinstance(middle, Broken)
    assert (middle.seq, middle.event_id) == (3, 30)
    assert "event 2 is missing" in middle.reason
    tail = verify_chain(events[:2], 3, events[2].hash)
    assert isinstance(tail, Broken)
    assert tail.event_id is None
    assert "event 3 of 3 is missing" in tail.reason


def test_events_renumbered_to_hide_a_removal_still_break_the_chain() -> None:
    events = chain_of("taken", "queued", "sent")
    renumbered = ChainedEvent(**{**events[2].__dict__, "seq": 2})
    verdict = verify_chain([events[0], renumbered], 2, events[2].hash)
    assert isinstance(verdict, Broken)
    assert verdict.event_id == 30


# --- in the database ---------------------------------------------------------------------------


def kinds(sessions: sessionmaker[Session], message_id: int) -> list[tuple[int, str]]:
    with sessions() as session:
        rows = session.execute(
            select(MessageEvent.seq, MessageEvent.kind)
            .where(MessageEvent.message_id == message_id)
            .order_by(MessageEvent.seq)
        )
        return [(seq, kind) for seq, kind in rows]


def check(sessions: sessionmaker[Session], message_id: int) -> Intact | Broken:
    with sessions() as session:
        return verify_timeline(session, message_id)


def test_a_message_taken_and_acknowledged_has_an_intact_timeline(
    clients: Clients, session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    clock.advance(minutes=3)
    with transaction(session_factory) as session:
        acknowledge(session, FlowStore(), message_id, by="Sam Taylor", via="sms", now=clock())
    verdict = check(session_factory, message_id)
    written = kinds(session_factory, message_id)
    assert isinstance(verdict, Intact)
    assert verdict.events == len(written) >= 3
    assert [seq for seq, _ in written] == list(range(1, len(written) + 1))
    assert written[0][1] == "taken"
    assert written[-1][1] == "acknowledged"


def test_editing_an_event_in_the_database_names_that_event(
    clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    with transaction(session_factory) as session:
        add_event(session, message_id, "reply", dt.datetime.now(dt.UTC), text="ACK")
        add_event(session, message_id, "closed", dt.datetime.now(dt.UTC), note="done")
    with transaction(session_factory) as session:
        reply = session.scalars(select(MessageEvent).where(MessageEvent.kind == "reply")).one()
        reply_id, reply_seq = reply.id, reply.seq
        session.execute(
            update(MessageEvent).where(MessageEvent.id == reply_id).values(detail={"text": "NO"})
        )
    verdict = check(session_factory, message_id)
    assert isinstance(verdict, Broken)
    assert (verdict.event_id, verdict.seq) == (reply_id, reply_seq)
    assert "reply" in verdict.reason


def test_deleting_an_event_in_the_database_breaks_the_chain_there(
    clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    with transaction(session_factory) as session:
        for text in ("first", "second", "third"):
            add_event(session, message_id, "reply", dt.datetime.now(dt.UTC), text=text)
    written = kinds(session_factory, message_id)
    middle_seq = written[-2][0]
    with transaction(session_factory) as session:
        session.execute(
            delete(MessageEvent).where(
                MessageEvent.message_id == message_id, MessageEvent.seq == middle_seq
            )
        )
    verdict = check(session_factory, message_id)
    assert isinstance(verdict, Broken)
    assert verdict.seq == middle_seq + 1
    assert f"event {middle_seq} is missing" in verdict.reason


def test_deleting_the_last_event_breaks_the_chain_too(
    clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    last = kinds(session_factory, message_id)[-1][0]
    with transaction(session_factory) as session:
        session.execute(
            delete(MessageEvent).where(
                MessageEvent.message_id == message_id, MessageEvent.seq == last
            )
        )
    verdict = check(session_factory, message_id)
    assert isinstance(verdict, Broken)
    assert f"event {last} of {last} is missing" in verdict.reason


def test_appends_racing_from_many_connections_make_one_chain(
    clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    """Each append in a transaction of its own, all at once (as webhooks on several replicas
    and a worker would): PostgreSQL's row lock, or SQLite's write lock, lines them up."""
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    before = len(kinds(session_factory, message_id))
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            start.wait(timeout=10)
            with transaction(session_factory) as session:
                add_event(session, message_id, "reply", dt.datetime.now(dt.UTC), n=n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert [seq for seq, _ in kinds(session_factory, message_id)] == list(range(1, before + 9))
    assert isinstance(check(session_factory, message_id), Intact)


def test_a_second_append_waits_for_the_first_and_follows_it(
    clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    """PostgreSQL: the second append waits at the message's row lock, then reads the length
    and head the first committed. Reading them without the lock, both would claim one seq."""
    if session_factory.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite's write lock is taken at BEGIN: two appends never overlap")
    message_id = clients.leave_message("harbour-plumbing", name="Pat")

    def second_reply(session: Session) -> None:
        add_event(session, message_id, "reply", dt.datetime.now(dt.UTC), text="second")

    with transaction(session_factory) as first:
        add_event(first, message_id, "reply", dt.datetime.now(dt.UTC), text="first")
        second = Racer(session_factory, second_reply)
        second.wait_until_blocked()
    second.result()
    assert isinstance(check(session_factory, message_id), Intact)
    assert [kind for _, kind in kinds(session_factory, message_id)][-2:] == ["reply", "reply"]


# --- where a client and an operator check it ---------------------------------------------------


def test_the_api_says_whether_a_timeline_is_intact_and_where_it_broke(
    client: TestClient, clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    key = bearer(clients.api_key("harbour-plumbing"))
    intact = client.get(f"/api/v1/messages/{message_id}/verify", headers=key)
    assert intact.status_code == 200
    body = intact.json()
    assert body["intact"] is True
    assert body["broken_at"] is None
    assert body["events"] == len(kinds(session_factory, message_id))
    assert len(body["head"]) == 64

    with transaction(session_factory) as session:
        first = session.scalars(
            select(MessageEvent).where(MessageEvent.message_id == message_id, MessageEvent.seq == 1)
        ).one()
        first_id = first.id
        session.execute(update(MessageEvent).where(MessageEvent.id == first_id).values(kind="x"))
    broken = client.get(f"/api/v1/messages/{message_id}/verify", headers=key).json()
    assert broken["intact"] is False
    assert broken["broken_at"]["event_id"] == first_id
    other = bearer(clients.api_key("bright-dental"))
    assert client.get(f"/api/v1/messages/{message_id}/verify", headers=other).status_code == 404


def test_nightdesk_messages_verify_exits_0_when_intact_and_1_naming_the_broken_event(
    clients: Clients, session_factory: sessionmaker[Session], flows_dir: Path
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    code, output = nightdesk("messages", "verify", str(message_id))
    assert code == 0, output
    assert f"message {message_id}: intact" in output

    with transaction(session_factory) as session:
        event = session.scalars(
            select(MessageEvent).where(MessageEvent.message_id == message_id, MessageEvent.seq == 2)
        ).one()
        event_id, kind = event.id, event.kind
        session.execute(
            update(MessageEvent).where(MessageEvent.id == event_id).values(detail={"edited": 1})
        )
    code, output = nightdesk("messages", "verify", str(message_id))
    assert code == 1
    assert f"BROKEN at event 2: event 2 (id {event_id}, {kind}) was altered" in output
    assert nightdesk("messages", "verify", "999")[0] == 1


def test_events_written_before_the_chain_existed_are_chained_by_the_migration(
    tmp_path: Path,
) -> None:
    """Migration 0009 numbers and hashes every existing event in the order written: from then
    on, an edit to them shows too."""
    if os.environ.get(TEST_DATABASE_URL):
        pytest.skip("the migration's arithmetic is the same on PostgreSQL; this builds a file")
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logging"] = False
    command.upgrade(config, "0007")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO messages (id, caller, answers, urgency, outcome, status, created_at,"
                " updated_at) VALUES (1, '+447700900001', '{}', 'routine', 'message', 'new',"
                " '2026-11-01 02:00:00.000000', '2026-11-01 02:00:00.000000')"
            )
        )
        for n, kind in enumerate(("taken", "queued", "sent"), start=1):
            connection.execute(
                text(
                    "INSERT INTO message_events (message_id, at, kind, detail) VALUES"
                    " (1, :at, :kind, :detail)"
                ),
                {"at": f"2026-11-01 02:0{n}:00.000000", "kind": kind, "detail": '{"n": 1}'},
            )
    engine.dispose()
    command.upgrade(config, "head")
    sessions = make_session_factory(make_engine(url))
    verdict = check(sessions, 1)
    assert isinstance(verdict, Intact)
    assert verdict.events == 3
    assert verdict.head is not None
    with transaction(sessions) as session:
        session.execute(update(MessageEvent).where(MessageEvent.seq == 2).values(kind="x"))
    assert isinstance(check(sessions, 1), Broken)


def test_changing_what_the_caller_said_on_the_message_itself_shows_too(
    clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    """The event that took the message stamps a hash of its caller, answers and transcription."""
    message_id = clients.leave_message("harbour-plumbing", transcription="Burst pipe", name="Pat")
    assert isinstance(check(session_factory, message_id), Intact)
    with transaction(session_factory) as session:
        session.execute(
            update(Message).where(Message.id == message_id).values(transcription="All fine")
        )
    verdict = check(session_factory, message_id)
    assert isinstance(verdict, Broken)
    assert verdict.seq == 1
    assert "taken" in verdict.reason


def test_a_transcription_arriving_later_is_stamped_on_its_own_event(
    clients: Clients, session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    message_id = clients.leave_message("harbour-plumbing", name="Pat")
    with transaction(session_factory) as session:
        message = session.get(Message, message_id)
        assert message is not None
        attach_transcription(session, message, "Burst pipe in the kitchen", clock())
    assert isinstance(check(session_factory, message_id), Intact)
    with transaction(session_factory) as session:
        session.execute(update(Message).where(Message.id == message_id).values(answers={}))
    verdict = check(session_factory, message_id)
    assert isinstance(verdict, Broken)
    assert "transcription" in verdict.reason
