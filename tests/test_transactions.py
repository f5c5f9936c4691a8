"""Units of work: each is committed before it returns, sees the database rather than another
unit's objects, and one failing takes nothing of the others with it (on SQLite the units that
arrive together share a transaction, see SqliteWriter)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.clients.models import Client, PhoneNumber
from app.db import Database, SqliteWriter, make_database


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
    database: Database, works: list[Callable[[Session], str]]
) -> list[str | BaseException]:
    """Units arriving together: on SQLite they share the writer's next batch, which is what
    these tests are about. On PostgreSQL each has a transaction of its own on one of several
    threads, in no set order: they run one after another, so an outcome never depends on which
    thread wins a race (two inserts of one slug, a read racing a write)."""
    if isinstance(database, SqliteWriter):
        return await asyncio.gather(*(database.run(w) for w in works), return_exceptions=True)
    outcomes: list[str | BaseException] = []
    for work in works:
        try:
            outcomes.append(await database.run(work))
        except Exception as error:
            outcomes.append(error)
    return outcomes


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

    assert results[0] == "first"
    assert isinstance(results[1], IntegrityError)
    assert results[2] == "third"
    assert slugs(session_factory) == {"first", "third"}


def test_a_unit_sees_the_database_not_the_objects_another_unit_loaded(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    """Hot paths write with Core statements, which don't touch a session's objects: a unit
    that found another's stale copy in a shared session would act on what is no longer so."""
    asyncio.run(database.run(add_client("acme")))

    def load(session: Session) -> str:
        return session.scalars(select(Client).where(Client.slug == "acme")).one().name

    def rename(session: Session) -> str:
        session.execute(update(Client).where(Client.slug == "acme").values(name="Acme Ltd"))
        return "renamed"

    results = asyncio.run(run_together(database, [load, rename, load]))

    assert results == ["Acme", "renamed", "Acme Ltd"]


def test_when_a_shared_commit_fails_every_unit_in_it_is_told_and_the_next_one_works(
    database: Database, session_factory: sessionmaker[Session]
) -> None:
    """SQLite checks a deferred foreign key only at COMMIT: the batch's COMMIT fails, and no
    unit in it may believe its write was kept."""
    if not isinstance(database, SqliteWriter):
        pytest.skip("only SQLite's units share a transaction")

    def number_for_no_client(session: Session) -> str:
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        session.add(PhoneNumber(number="+441134960999", client_id=424242))
        session.flush()
        return "number"

    results = asyncio.run(run_together(database, [add_client("lost"), number_for_no_client]))

    assert all(isinstance(result, IntegrityError) for result in results)
    assert slugs(session_factory) == set()
    assert asyncio.run(database.run(add_client("next"))) == "next"
    assert slugs(session_factory) == {"next"}


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
