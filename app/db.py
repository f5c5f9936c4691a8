"""Engine, sessions and the declarative base: the one place that talks to the database."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from fastapi import Request
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    RootTransaction,
    Table,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql import ClauseElement

from app.prepared import Prepared

T = TypeVar("T")
POSTGRESQL_UNIT_THREADS = 4

# Stable constraint names, so Alembic can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        dt.datetime: DateTime(timezone=True),
    }


def make_engine(url: str, *, lock_timeout: float = 30, ping_after: float = 1.0) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite; on PostgreSQL a fixed
    pool whose connections are pinged before use when they have sat idle (`_ping_if_idle`).

    `lock_timeout`: how long a SQLite transaction waits for the write lock before it fails.
    `ping_after`: seconds a PostgreSQL connection may sit in the pool and be used unpinged.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        on_disk = bool(path) and path != ":memory:"
        pool: dict[str, Any] = {}
        if on_disk:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Every transaction takes SQLite's one write lock as it begins (below), so a second
            # connection could only wait in SQLite's busy handler, which sleeps in steps of up
            # to 100 ms. Waiting for the pool's one connection wakes the moment it is returned.
            pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 30}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": lock_timeout}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if on_disk:
            _SqliteWriter(_process_write_lock(path), lock_timeout).listen(engine)
        return engine
    # A fixed set of connections, enough for the unit threads, the dispatcher and the API: an
    # overflow connection costs PostgreSQL a new process, and is closed again once returned.
    engine = create_engine(url, pool_size=8, max_overflow=4)
    for when in ("connect", "checkin"):
        event.listen(engine, when, _note_idle_since)
    event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect, ping_after))
    return engine


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(
    dialect: Dialect, ping_after: float, dbapi_connection: Any, record: Any, _proxy: Any
) -> None:
    """SQLAlchemy's pre-ping, for connections that sat in the pool a while.

    A connection goes stale while it sits unused (PostgreSQL restarted, a firewall timed it out);
    one that was returned a moment ago is as good as it was then. Pinging every checkout, as
    `pool_pre_ping` does, cost each webhook a round trip: about a seventh of its time on
    PostgreSQL (`python -m bench.webhooks`). A dead one is replaced before use: raising
    DisconnectionError makes the pool connect afresh.
    https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic
    """
    if time.monotonic() - record.info[_IDLE_SINCE] < ping_after:
        return
    try:
        dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs
    except Exception as exc:
        raise DisconnectionError(str(exc)) from exc


_IDLE_SINCE = "idle_since"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; synchronous=NORMAL in WAL mode survives a crash
    # of the process (not of the machine) and costs no fsync per commit.
    # https://www.sqlite.org/wal.html#performance_considerations
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()  # the busy timeout is sqlite3.connect()'s `timeout` (make_engine's lock_timeout)
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see below).
    dbapi_connection.isolation_level = None


class _SqliteWriter:
    """Transactions on a SQLite file: BEGIN IMMEDIATE, under a lock shared by this process.

    BEGIN IMMEDIATE takes SQLite's one write lock as the transaction starts, not at its first
    write: two webhooks for one call then run one after the other instead of both reading the
    same state. This is SQLite's stand-in for PostgreSQL's SELECT ... FOR UPDATE on the call row.
    https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl

    The process lock in front of it is for the connections of this process (the event loop's,
    the database thread's, the dispatcher's): a connection that found SQLite's lock taken would
    wait in SQLite's busy handler, which sleeps in steps of up to 100 ms however soon the lock
    is free (under load the dispatcher waited 730 ms at worst, `python -m bench.dispatch`); a
    thread waiting on a `threading.Lock` wakes the moment it is released. Other processes (a
    `nightdesk` command, a worker) still meet at SQLite's own lock.

    These listeners own the whole transaction: BEGIN IMMEDIATE, then COMMIT or ROLLBACK, straight
    to the driver (its own commit() then has nothing left to do), releasing the lock after.
    """

    def __init__(self, lock: _WriteLock, wait: float) -> None:
        self.lock, self.wait = lock, wait

    def listen(self, engine: Engine) -> None:
        event.listen(engine, "begin", self.begin)
        event.listen(engine, "commit", lambda connection: self.end(connection, "COMMIT"))
        event.listen(engine, "rollback", lambda connection: self.end(connection, "ROLLBACK"))
        # A connection returned or dropped mid-transaction must not keep the lock.
        event.listen(engine, "checkin", lambda driver, record: self.abandon(driver, record.info))
        event.listen(
            engine, "invalidate", lambda driver, record, _exc: self.abandon(driver, record.info)
        )

    def begin(self, connection: Connection) -> None:
        if not self.lock.acquire(self.wait):
            raise OperationalError("BEGIN IMMEDIATE", None, _busy("held by this process"))
        connection.info[_HOLDS_WRITE_LOCK] = True
        try:
            _driver_execute(connection.connection.dbapi_connection, "BEGIN IMMEDIATE")
        except BaseException:
            self._release(connection.info)
            raise

    def end(self, connection: Connection, sql: str) -> None:
        driver = connection.connection.dbapi_connection
        try:
            if driver is not None and driver.in_transaction:
                _driver_execute(driver, sql)
        except BaseException:
            if sql == "ROLLBACK":
                self._release(connection.info)
            raise  # a failed COMMIT keeps the lock until its ROLLBACK
        self._release(connection.info)

    def abandon(self, driver: Any, info: dict[Any, Any]) -> None:
        if info.get(_HOLDS_WRITE_LOCK):
            with suppress(sqlite3.Error):
                if driver is not None and driver.in_transaction:
                    driver.execute("ROLLBACK")
            self._release(info)

    def _release(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_WRITE_LOCK, False):
            self.lock.release()


_HOLDS_WRITE_LOCK = "holds_write_lock"


class _WriteLock:
    """This process's lock on one SQLite file, knowing which thread holds it.

    The event loop holds it across awaits while its webhooks' shared transaction is open
    (SqliteTransactions): synchronous database work on the loop in that moment would wait for
    the loop itself. It fails at once instead, saying so.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: int | None = None

    def acquire(self, wait: float) -> bool:
        if self._holder == threading.get_ident():
            raise RuntimeError(
                "this thread already holds the SQLite write lock: on the event loop, run database"
                " work through app.db.in_transaction (or in a thread), not directly"
            )
        taken = self._lock.acquire(timeout=wait) if wait > 0 else self._lock.acquire(False)
        if taken:
            self._holder = threading.get_ident()
        return taken

    def release(self) -> None:
        self._holder = None
        self._lock.release()


_WRITE_LOCKS: dict[str, _WriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _process_write_lock(path: str) -> _WriteLock:
    """One lock per database file, whichever engines of this process open it."""
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(os.path.realpath(path), _WriteLock())


def _driver_execute(driver: Any, sql: str) -> None:
    """A statement straight to sqlite3 (exec_driver_sql costs more than the statement), its
    error wrapped as SQLAlchemy would."""
    try:
        driver.execute(sql)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, None, exc, sqlite3.Error) from exc


def _busy(why: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(f"database is locked ({why})")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY  # what _open_batch looks for
    return error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: Callable[[], Session]) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


async def in_transaction(request: Request, work: Callable[[Session, dt.datetime], T]) -> T:
    """Run `work` in one committed transaction (see Transactions), with the app's clock."""
    state = request.app.state
    transactions: Transactions = state.transactions
    return await transactions.run(lambda session: work(session, state.clock()))


class Transactions:
    """Runs the requests' units of work, each in its own transaction, committed when it returns,
    on a few database threads, so a unit can wait for PostgreSQL without holding up the loop.

    Few, because every round trip hands the GIL back and forth between a database thread and the
    event loop: with ten threads a busy server spent more CPU on that than on its SQL. Four
    measured best (`python -m bench.webhooks`: busy-night p99 8 ms, against 13-20 ms for
    psycopg's async driver through SQLAlchemy's asyncio bridge, at the same throughput).
    """

    def __init__(self, engine: Engine, threads: int = 1) -> None:
        self.sessions = make_session_factory(engine)
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="database")

    async def run(self, work: Callable[[Session], T]) -> T:
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, context.run, self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        with transaction(self.sessions) as session:
            return work(session)

    def close(self) -> None:
        self._threads.shutdown()


class SqliteTransactions(Transactions):
    """Group commit on a SQLite file: the units of work that reach the event loop together share
    one transaction, each in a savepoint of its own, and one COMMIT makes them all durable before
    any of their answers goes out.

    SQLite does its work inside this process, holding the GIL: a database thread adds no
    parallelism, only thread switches (about 0.4 ms of CPU a webhook at full load), so units run
    right on the event loop. What a busy server paid for then was the transaction, not the SQL:
    BEGIN IMMEDIATE, the WAL COMMIT and the session's own begin and commit cost as much as the
    turn itself. A batch opens when a unit finds none (BEGIN IMMEDIATE) and commits on the loop's
    next pass, so whatever arrived in between joins it (`python -m bench.webhooks`). A unit that
    raises is rolled back to its savepoint alone. If the COMMIT fails, every unit in the batch is
    told (its webhook falls back to voicemail): nobody is answered before their write is durable.

    When the write lock is taken (a `nightdesk` command, a worker, the dispatcher's thread) a
    unit runs on the database thread instead, which waits for it, in a transaction of its own.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        url = engine.url.render_as_string(hide_password=False)
        # A connection of its own that never waits: BEGIN IMMEDIATE fails at once when busy.
        # It stays checked out, used only on the event loop, so a webhook costs no pool
        # checkout. Its sessions still come from self.sessions, with the same session events.
        self._at_once_engine = make_engine(url, lock_timeout=0)
        self._at_once: Connection | None = None
        self._batch: _Batch | None = None

    async def run(self, work: Callable[[Session], T]) -> T:
        batch = self._batch
        if batch is None:
            try:
                batch = self._open_batch()
            except _WriteLockBusyError:
                return await super().run(work)
        result = self._run_unit(batch, work)
        await batch.committed()
        return result

    def _open_batch(self) -> _Batch:
        if self._at_once is None:
            self._at_once = self._at_once_engine.connect()
        connection = self._at_once
        try:
            transaction = connection.begin()  # BEGIN IMMEDIATE (_SqliteWriter)
        except OperationalError as exc:
            # A failed BEGIN can leave the connection half-begun: start afresh with a new one.
            self._discard()
            if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                raise _WriteLockBusyError from exc
            raise
        # One session for the batch: its session commits into the connection's transaction
        # ("rollback_only"), which the batch commits itself.
        session = self.sessions(bind=connection, join_transaction_mode="rollback_only")
        batch = self._batch = _Batch(connection, transaction, session)
        asyncio.get_running_loop().call_soon(self._commit, batch)
        return batch

    def _run_unit(self, batch: _Batch, work: Callable[[Session], T]) -> T:
        """`work` in a savepoint of the batch, flushed there, leaving no objects behind in the
        batch's session for the next unit (a unit sees the database, not another's objects)."""
        session = batch.session
        batch.execute("SAVEPOINT unit")
        try:
            result = work(session)
            session.flush()
        except BaseException:
            if not batch.undo_unit() and self._batch is batch:
                self._batch = None  # it is lost: the units after this one start another
            raise
        finally:
            if session.identity_map or session.new:
                session.expunge_all()
        batch.execute("RELEASE unit")
        return result

    def _commit(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        try:
            batch.commit()
        except _BatchLostError as exc:
            batch.tell(exc)  # rolled back already, and the connection may carry the next batch
        except BaseException as exc:
            # Whatever state a failed COMMIT left behind, a new connection starts clean; closing
            # this one rolls back and lets the lock go (_SqliteWriter.abandon).
            self._discard()
            batch.tell(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            batch.tell(None)
        finally:
            batch.session.close()

    def _discard(self) -> None:
        if self._at_once is not None:
            connection, self._at_once = self._at_once, None
            connection.close()

    def close(self) -> None:
        super().close()
        self._discard()
        self._at_once_engine.dispose()


class _Batch:
    """One SQLite transaction and session shared by the units of work of one pass of the event
    loop."""

    def __init__(self, connection: Connection, transaction: RootTransaction, session: Session):
        self.connection, self.transaction, self.session = connection, transaction, session
        self._driver = connection.connection.dbapi_connection
        self._waiting: list[asyncio.Future[None]] = []

    def execute(self, sql: str) -> None:
        _driver_execute(self._driver, sql)

    def undo_unit(self) -> bool:
        """Roll the failed unit back to its savepoint; False when the whole batch is rolled back
        instead. The session does that itself when a flush fails (a broken constraint: our own
        races use ON CONFLICT), and this does it if the savepoint can't be undone."""
        if not self.transaction.is_active:
            return False
        try:
            self.execute("ROLLBACK TO unit")
            self.execute("RELEASE unit")
        except DBAPIError:
            self.transaction.rollback()
            return False
        return True

    def commit(self) -> None:
        """The session's after-commit hooks (a wake for the dispatcher, which then waits for the
        write lock), then COMMIT; the write lock goes (_SqliteWriter). Raises for a batch that
        a failed unit has already rolled back."""
        if not self.transaction.is_active:
            raise _BatchLostError("COMMIT", None, sqlite3.OperationalError("rolled back"))
        self.session.commit()
        self.transaction.commit()

    async def committed(self) -> None:
        """Wait for the batch's COMMIT; raises what it raised. Each unit waits on a future of
        its own, so a webhook whose caller went away cancels only its own wait."""
        waiting = asyncio.get_running_loop().create_future()
        self._waiting.append(waiting)
        await waiting

    def tell(self, failure: BaseException | None) -> None:
        for waiting in self._waiting:
            if waiting.done():
                continue
            if failure is None:
                waiting.set_result(None)
            else:
                waiting.set_exception(failure)


class _BatchLostError(OperationalError):
    """Another unit of work in the same transaction broke it: this one's write is gone too."""


class _WriteLockBusyError(Exception):
    pass


def make_transactions(engine: Engine) -> Transactions:
    """SQLite on a file gets SqliteTransactions, PostgreSQL a few threads; SQLite in memory one
    thread (each thread would see a database of its own)."""
    if engine.dialect.name == "postgresql":
        return Transactions(engine, threads=POSTGRESQL_UNIT_THREADS)
    if engine.url.database not in (None, "", ":memory:"):
        return SqliteTransactions(engine)
    return Transactions(engine)


def upgrade_database(url: str) -> None:
    """Bring the database at `url` to the newest schema (`nightdesk db upgrade`).

    Configured here, not by alembic.ini, which stays in the checkout for developers' `alembic`:
    an installed wheel carries the migrations as app/migrations (pyproject.toml), a checkout
    has them beside the package.
    """
    from alembic import command
    from alembic.config import Config

    package = Path(__file__).resolve().parent
    packaged = package / "migrations"
    config = Config()
    scripts = packaged if packaged.is_dir() else package.parent / "migrations"
    config.set_main_option("script_location", str(scripts).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def insert_if_absent(session: Session, model: type[Base], values: dict[str, Any], key: str) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING; True when this call inserted the row.

    How repeats become no-ops: a Twilio retry, a second worker or a re-run escalation step tries
    to insert the same row again and simply doesn't.
    """
    # Column defaults (status, timestamps) still apply: they belong to the table, not the ORM.
    return _insert_ignoring(model.__tablename__, key).first(session, values) is not None


def insert_ignoring(
    table: Table, key: str, returning: str | None = None
) -> Callable[[str], ClauseElement]:
    """For `Prepared`: INSERT … ON CONFLICT (key) DO NOTHING RETURNING key (or `returning`)."""

    def build(dialect: str) -> ClauseElement:
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        # RETURNING, because rowcount is not reliable for this on every driver.
        ignoring = insert(table).on_conflict_do_nothing(index_elements=[key])
        return ignoring.returning(table.c[returning or key])

    return build


@lru_cache(maxsize=64)
def _insert_ignoring(table_name: str, key: str) -> Prepared:
    return Prepared(insert_ignoring(Base.metadata.tables[table_name], key))
