"""A message's timeline is hash-chained: editing, removing or forking it afterwards shows."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import FlowStore
from app.db import transaction
from app.dispatch.acks import acknowledge
from app.messages.chain import Broken, ChainedEvent, Intact, event_hash, verify_chain
from app.messages.models import MessageEvent
from app.messages.timeline import add_event, verify_timeline
from tests.clock import FakeClock
from tests.support.clients import Clients
from tests.support.clients import clients as clients
from tests.support.locks import Racer

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
