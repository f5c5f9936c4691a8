"""Units of work: each is committed before it returns, sees the database rather than another
unit's objects, and one failing takes nothing of the others with it (on SQLite the units that
arrive together share a transaction, see SqliteWriter)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.clients.models import Client, PhoneNumber
from app.db import Database, SqliteWriter, make_database, make_engine


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = make_database(database_url)
    yield database
    database.close()


def add_client(slug: str) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        session.add(Client(slug=slug, name=slug.title(), timezone="Europe/London"))
        session.flush()
        return slug

    return work


def slugs(session_factory: sessionmaker[Session]) -> set[str]:
    with session_factory() as session:
        return set(session.scalars(select(Client.slug)))


async def run_together(
    database: Database, works: Sequence[Callable[[Session], object]]
) -> list[object]:
    """`works` as units arriving together: on SQLite, in one pass of the event loop, so they
    share the next transaction."""
    return await asyncio.gather(*(database.run(w) for w in works), return_exceptions=True)


def test_units_arriving_together_are_all_committed_when_they_return(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    names = [f"client-{n}" for n in range(20)]

    async def each_sees_its_own_row_committed() -> list[str]:
        async def one(name: str) -> str:
            await database.run(add_client(name))
            # Another connection, on another thread (as a command's), sees it already.
            assert name in await asyncio.to_thread(slugs, session_factory)
            return name

        return await asyncio.gather(*(one(name) for name in names))

    assert asyncio.run(each_sees_its_own_row_committed()) == names
    assert slugs(session_factory) == set(names)


def test_a_failing_unit_is_rolled_back_alone(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    def add_then_fail(session: Session) -> str:
        add_client("half-done")(session)
        raise LookupError("no such flow")

    works = [add_client("before"), add_then_fail, add_client("after")]
    results = asyncio.run(run_together(database, works))

    assert results[0] == "before"
    assert isinstance(results[1], LookupError)
    assert results[2] == "after"
    assert slugs(session_factory) == {"before", "after"}


def test_a_unit_that_breaks_a_constraint_is_rolled_back_alone(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    works = [add_client("first"), add_client("first"), add_client("third")]

    results = asyncio.run(run_together(database, works))

    # Which "first" wins is the database's to decide (on PostgreSQL they race).
    assert "first" in results[:2]
    assert sum(isinstance(result, IntegrityError) for result in results) == 1
    assert results[2] == "third"
    assert slugs(session_factory) == {"first", "third"}


def test_a_unit_sees_the_database_not_the_objects_another_unit_loaded(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    """Hot paths write with Core statements, which don't touch a session's objects: a unit
    that found another's stale copy in a shared session would act on what is no longer so."""
    if not isinstance(database, SqliteWriter):
        pytest.skip("only SQLite's units share a transaction (PostgreSQL's run side by side)")
    asyncio.run(database.run(add_client("acme")))

    def load(session: Session) -> Client:
        return session.scalars(select(Client).where(Client.slug == "acme")).one()

    def rename(session: Session) -> str:
        session.execute(update(Client).where(Client.slug == "acme").values(name="Acme Ltd"))
        return "renamed"

    before, renamed, after = asyncio.run(run_together(database, [load, rename, load]))

    assert isinstance(before, Client)
    assert isinstance(after, Client)
    assert (before.name, renamed, after.name) == ("Acme", "renamed", "Acme Ltd")


def test_when_a_shared_commit_fails_each_unit_is_written_alone_and_gets_its_own_outcome(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    """SQLite checks a deferred foreign key only at COMMIT: the batch's COMMIT fails, then each
    unit runs again alone: the one at fault fails, the other is kept."""
    if not isinstance(database, SqliteWriter):
        pytest.skip("only SQLite's units share a transaction")

    def number_for_no_client(session: Session) -> str:
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        session.add(PhoneNumber(number="+441134960999", client_id=424242))
        session.flush()
        return "number"

    results = asyncio.run(run_together(database, [add_client("kept"), number_for_no_client]))

    assert results[0] == "kept"
    assert isinstance(results[1], IntegrityError)
    assert slugs(session_factory) == {"kept"}
    assert asyncio.run(database.run(add_client("next"))) == "next"
    assert slugs(session_factory) == {"kept", "next"}


def test_the_dispatchers_thread_and_the_event_loop_write_through_the_same_database(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    async def webhooks_while_a_thread_writes() -> None:
        thread = threading.Thread(
            target=lambda: [database.run_blocking(add_client(f"thread-{n}")) for n in range(10)]
        )
        thread.start()
        await asyncio.gather(*(database.run(add_client(f"loop-{n}")) for n in range(10)))
        await asyncio.to_thread(thread.join)

    asyncio.run(webhooks_while_a_thread_writes())

    assert len(slugs(session_factory)) == 20


def test_a_unit_that_waits_for_another_unit_fails_at_once_instead_of_hanging(
    database: Database,
) -> None:
    """On SQLite it would wait for the writer, which is busy running it: forever."""
    if not isinstance(database, SqliteWriter):
        pytest.skip("PostgreSQL's units each have a transaction of their own")

    def nested(session: Session) -> str:
        return database.run_blocking(add_client("inner"))

    with pytest.raises(RuntimeError, match="cannot wait for another"):
        database.run_blocking(nested)


def test_while_another_process_holds_sqlites_lock_the_event_loop_goes_on(
    database: Database, database_url: str, session_factory: sessionmaker[Session]
) -> None:
    """A `nightdesk` command writing: the webhook's unit waits for the lock on a thread, and
    meanwhile the loop answers everything else (the voicemail that needs no database, health)."""
    if not isinstance(database, SqliteWriter):
        pytest.skip("PostgreSQL locks rows, not the database")
    other_process = make_engine(database_url).connect()
    other_process.exec_driver_sql("SELECT 1")  # its transaction: BEGIN IMMEDIATE holds the lock

    async def unit_waits_while_the_loop_runs() -> None:
        waiting = asyncio.ensure_future(database.run(add_client("after-the-command")))
        for _ in range(20):  # the loop keeps turning while the unit waits
            await asyncio.sleep(0)
        assert not waiting.done()
        await asyncio.to_thread(other_process.commit)
        assert await waiting == "after-the-command"

    try:
        asyncio.run(unit_waits_while_the_loop_runs())
    finally:
        other_process.close()
    assert slugs(session_factory) == {"after-the-command"}


def test_a_webhook_whose_caller_went_away_does_not_strand_the_others_in_its_batch(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    """Twilio gave up on one webhook (its task is cancelled) while its unit waited in a batch:
    the units queued beside it still get their results."""
    if not isinstance(database, SqliteWriter):
        pytest.skip("only SQLite's units wait for a shared batch")

    async def one_caller_hangs_up() -> list[str]:
        units = [asyncio.ensure_future(database.run(add_client(f"c-{n}"))) for n in range(3)]
        await asyncio.sleep(0)  # all three are queued for the next batch, not yet written
        units[1].cancel()
        return list(await asyncio.wait_for(asyncio.gather(units[0], units[2]), timeout=10))

    assert asyncio.run(one_caller_hangs_up()) == ["c-0", "c-2"]
    assert slugs(session_factory) == {"c-0", "c-1", "c-2"}  # its work was done all the same
