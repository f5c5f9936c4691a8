"""Units of work that arrive together: each is committed before it returns, and one failing
takes nothing of the others with it (on SQLite they share a transaction, see SqliteTransactions).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.clients.models import Client, PhoneNumber
from app.db import Transactions, make_engine, make_transactions


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def transactions(engine: Engine) -> Iterator[Transactions]:
    transactions = make_transactions(engine)
    yield transactions
    transactions.close()


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
    transactions: Transactions, works: list[Callable[[Session], str]]
) -> list[str | BaseException]:
    return await asyncio.gather(*(transactions.run(w) for w in works), return_exceptions=True)


def test_units_arriving_together_are_all_committed_when_they_return(
    transactions: Transactions, session_factory: sessionmaker[Session]
) -> None:
    names = [f"client-{n}" for n in range(20)]

    async def each_sees_its_own_row_committed() -> list[str]:
        async def one(name: str) -> str:
            await transactions.run(add_client(name))
            # Another connection, on another thread (as the dispatcher's), sees it already.
            assert name in await asyncio.to_thread(slugs, session_factory)
            return name

        return await asyncio.gather(*(one(name) for name in names))

    assert asyncio.run(each_sees_its_own_row_committed()) == names
    assert slugs(session_factory) == set(names)


def test_a_failing_unit_is_rolled_back_alone(
    transactions: Transactions, session_factory: sessionmaker[Session]
) -> None:
    def add_then_fail(session: Session) -> str:
        add_client("half-done")(session)
        raise LookupError("no such flow")

    works = [add_client("before"), add_then_fail, add_client("after")]
    results = asyncio.run(run_together(transactions, works))

    assert results[0] == "before"
    assert isinstance(results[1], LookupError)
    assert results[2] == "after"
    assert slugs(session_factory) == {"before", "after"}


def test_when_a_shared_commit_fails_every_unit_in_it_is_told_and_the_next_one_works(
    transactions: Transactions, session_factory: sessionmaker[Session], database_url: str
) -> None:
    """SQLite checks a deferred foreign key only at COMMIT: the batch's COMMIT fails, and no
    unit in it may believe its write was kept."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite's units share a transaction")

    def number_for_no_client(session: Session) -> str:
        session.execute(text("PRAGMA defer_foreign_keys = ON"))
        session.add(PhoneNumber(number="+441134960999", client_id=424242))
        session.flush()
        return "number"

    results = asyncio.run(run_together(transactions, [add_client("lost"), number_for_no_client]))

    assert all(isinstance(result, IntegrityError) for result in results)
    assert slugs(session_factory) == set()
    assert asyncio.run(transactions.run(add_client("next"))) == "next"
    assert slugs(session_factory) == {"next"}


def test_a_unit_that_breaks_a_constraint_takes_its_shared_transaction_down_and_all_are_told(
    transactions: Transactions, session_factory: sessionmaker[Session], database_url: str
) -> None:
    """Our own races insert with ON CONFLICT, so this is a bug's doing: the session rolls the
    whole shared transaction back. Every unit in it hears so (a caller gets the voicemail that
    needs no database); the units after it start a transaction of their own."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite's units share a transaction")
    works = [add_client("first"), add_client("first"), add_client("third")]

    results = asyncio.run(run_together(transactions, works))

    assert isinstance(results[0], SQLAlchemyError)
    assert isinstance(results[1], IntegrityError)
    assert results[2] == "third"
    assert slugs(session_factory) == {"third"}


def test_blocking_database_work_on_the_event_loop_during_a_shared_transaction_fails_at_once(
    transactions: Transactions, session_factory: sessionmaker[Session], database_url: str
) -> None:
    """It would wait for the write lock that the loop itself holds until the batch commits, on
    the loop's next pass: that is, forever. A clear error instead of a hung server."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite's units share a transaction")

    async def read_while_a_batch_is_open() -> None:
        pending = asyncio.ensure_future(transactions.run(add_client("waiting")))
        await asyncio.sleep(0)  # its unit has run; the batch commits on the loop's next pass
        with pytest.raises(RuntimeError, match="already holds the SQLite write lock"):
            slugs(session_factory)
        assert await pending == "waiting"

    asyncio.run(read_while_a_batch_is_open())
    assert slugs(session_factory) == {"waiting"}
