"""The database: the engine, the declarative base, and how units of work run.

A unit of work is a function of a Session. It adds and flushes; it never commits. `Database`
runs it in one transaction and commits before handing back its result, so a webhook answers
only once what it did is durable.

- PostgreSQL: each unit in its own transaction, on a few database threads (so the event loop
  never waits for a round trip).
- SQLite: one writer per process (`SqliteWriter`). Every unit of the process, from webhooks, the
  in-process dispatcher and status callbacks alike, goes through one thread that commits the
  units that arrived together in one transaction (group commit), each unit in a savepoint of its
  own, so one that fails undoes only its own work. Other processes (a `nightdesk` command, a
  worker) meet it at SQLite's own lock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    Table,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
Work = Callable[[Session], T]
log = logging.getLogger("nightdesk.db")

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


# --- the engine ----------------------------------------------------------------------------


def make_engine(url: str, *, ping_after: float = 1.0) -> Engine:
    """An engine tuned for the backend. Statement parameters never appear in its errors: they
    carry callers' numbers, and errors end up in logs.

    SQLite: WAL, a busy timeout, and transactions that take the write lock as they begin.
    PostgreSQL: a fixed pool whose connections are pinged before use when they sat idle for
    `ping_after` seconds (see `_ping_if_idle`).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        in_memory = not path or path == ":memory:"
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
            # In memory, every connection would be a database of its own: share one.
            **({"poolclass": StaticPool} if in_memory else {}),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # A fixed set of connections, enough for the unit threads, the dispatcher and the API: an
    # overflow connection costs PostgreSQL a new process, and is closed again once returned.
    engine = create_engine(url, pool_size=8, max_overflow=4, hide_parameters=True)
    for when in ("connect", "checkin"):
        event.listen(engine, when, _note_idle_since)
    event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect, ping_after))
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; synchronous=NORMAL in WAL mode survives a crash
    # of the process (not of the machine) and costs no fsync per commit.
    # https://www.sqlite.org/wal.html#performance_considerations
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (next function).
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    """BEGIN IMMEDIATE: take SQLite's write lock as the transaction starts, not at its first
    write, so two processes never both read a call's state and then both write it (SQLite's
    stand-in for PostgreSQL's SELECT ... FOR UPDATE). It also makes SAVEPOINTs work. This is
    SQLAlchemy's own recipe for pysqlite:
    https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _note_idle_since(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(
    dialect: Dialect, ping_after: float, dbapi_connection: Any, record: Any, _proxy: Any
) -> None:
    """SQLAlchemy's pre-ping, for connections that sat in the pool a while.

    A connection goes stale while it sits unused (PostgreSQL restarted, a firewall timed it out);
    one returned a moment ago is as good as it was then, and pinging every checkout, as
    `pool_pre_ping` does, costs every webhook a round trip. A dead one is replaced before use:
    raising DisconnectionError makes the pool connect afresh.
    https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic
    """
    if time.monotonic() - record.info[_IDLE_SINCE] < ping_after:
        return
    try:
        dialect.do_ping(dbapi_connection)  # what pool_pre_ping runs
    except Exception as exc:
        raise DisconnectionError(str(exc)) from exc


_IDLE_SINCE = "idle_since"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: Callable[[], Session]) -> Iterator[Session]:
    """One unit of work in a transaction of its own: committed when the block succeeds, rolled
    back when it raises. For commands and tests; the service runs units through `Database`."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# --- running units of work ------------------------------------------------------------------


class Database(Protocol):
    """Runs units of work, each in a session of its own (no unit sees another's objects) and
    committed before its result is handed back: `run` from async code, `run_blocking` from a
    thread (the dispatcher's)."""

    engine: Engine
    sessions: sessionmaker[Session]

    async def run(self, work: Work[T]) -> T: ...

    def run_blocking(self, work: Work[T]) -> T: ...

    def close(self) -> None: ...


class ThreadedDatabase:
    """Each unit in a transaction of its own, run from async code on one of a few database
    threads: enough to keep the event loop free while PostgreSQL answers; more only add GIL
    hand-offs between them and the loop."""

    THREADS = 4

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_session_factory(engine)
        self._threads = ThreadPoolExecutor(self.THREADS, thread_name_prefix="database")

    async def run(self, work: Work[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self.run_blocking, work
        )

    def run_blocking(self, work: Work[T]) -> T:
        with transaction(self.sessions) as session:
            return work(session)

    def close(self) -> None:
        self._threads.shutdown()
        self.engine.dispose()


@dataclass
class _Unit:
    """A unit of work waiting for the writer, and where its outcome goes."""

    work: Work[Any]
    future: asyncio.Future[Any] | Future[Any]
    loop: asyncio.AbstractEventLoop | None  # an asyncio future is settled on its own loop
    result: Any = None
    error: BaseException | None = field(default=None)


class SqliteWriter:
    """One writer per process for a SQLite database, with group commit.

    SQLite takes one writer at a time, and its work runs inside this process holding the GIL:
    more writers would only queue for its lock. What costs is the transaction (BEGIN, COMMIT),
    not the few statements of a webhook, so the units that queued up while the last batch was
    being written share the next transaction, each in a savepoint of its own
    (`join_transaction_mode="create_savepoint"`: a unit that raises is rolled back to its
    savepoint alone). Every unit's result goes back only after the shared COMMIT; if the COMMIT
    fails, every unit in the batch gets its error.
    """

    MAX_BATCH = 128

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_session_factory(engine)
        self._queue: queue.SimpleQueue[_Unit | None] = queue.SimpleQueue()
        self._closing = threading.Lock()  # no unit is queued behind the sentinel close() puts
        self._closed = False
        self._thread = threading.Thread(target=self._write_forever, name="sqlite-writer")
        self._thread.daemon = True  # a unit still queued at exit is one whose caller gave up
        self._thread.start()

    async def run(self, work: Work[T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_Unit(work, future, loop))
        return await future

    def run_blocking(self, work: Work[T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a unit of work cannot wait for another one: it would wait forever")
        future: Future[T] = Future()
        self._put(_Unit(work, future, None))
        return future.result()

    def close(self) -> None:
        with self._closing:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=30)
        self.engine.dispose()

    def _put(self, unit: _Unit) -> None:
        """Queue a unit for the writer; after close() nothing would ever write it: refuse."""
        with self._closing:
            if self._closed:
                raise RuntimeError("the database is closed")
            self._queue.put(unit)

    def _write_forever(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._write(batch)
            except BaseException as exc:  # BEGIN or COMMIT failed: none of the batch was kept
                for unit in batch:
                    unit.error = unit.error or exc
            _settle(batch)

    def _next_batch(self) -> list[_Unit] | None:
        """The next unit, waiting for it, and every unit queued behind it; None: stop."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.MAX_BATCH:
            try:
                unit = self._queue.get_nowait()
            except queue.Empty:
                break
            if unit is None:
                self._queue.put(None)  # stop once this batch is written
                break
            batch.append(unit)
        return batch

    def _write(self, batch: list[_Unit]) -> None:
        with self.engine.connect() as connection, connection.begin():  # BEGIN IMMEDIATE
            for unit in batch:
                with self.sessions(
                    bind=connection, join_transaction_mode="create_savepoint"
                ) as session:
                    try:
                        unit.result = unit.work(session)
                        session.commit()  # RELEASE SAVEPOINT: kept, once the batch commits
                    except Exception as exc:
                        session.rollback()  # ROLLBACK TO SAVEPOINT: this unit's work alone
                        unit.error = exc


def _settle(batch: list[_Unit]) -> None:
    """Hand each unit its outcome: one wake-up for each event loop that waits, not one a unit."""
    for_loops: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
    for unit in batch:
        if unit.loop is None:
            _settle_one(unit)
        else:
            for_loops.setdefault(unit.loop, []).append(unit)
    for loop, units in for_loops.items():
        try:
            loop.call_soon_threadsafe(_settle_all, units)
        except RuntimeError:  # that loop has closed: nobody is waiting any more
            log.warning("writer_loop_closed", extra={"units": len(units)})


def _settle_all(units: list[_Unit]) -> None:
    for unit in units:
        _settle_one(unit)


def _settle_one(unit: _Unit) -> None:
    if unit.future.done():  # an asyncio waiter that was cancelled (its caller went away)
        return
    if unit.error is not None:
        unit.future.set_exception(unit.error)
    else:
        unit.future.set_result(unit.result)


def refused_by_database(error: BaseException) -> bool:
    """Whether the database could not take the work now (down, unreachable, a connection
    lost, locked, out of connections), as opposed to the work itself being wrong: work refused
    this way may succeed later, so it is worth keeping (see `app.telephony.spool`)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error, OperationalError | InterfaceError | PoolTimeoutError | DisconnectionError
    )


def make_database(url: str) -> Database:
    """The `Database` for `url`: SQLite gets its one writer, PostgreSQL its threads."""
    engine = make_engine(url)
    return SqliteWriter(engine) if engine.dialect.name == "sqlite" else ThreadedDatabase(engine)


# --- statements every concept uses ----------------------------------------------------------


def insert_if_absent(session: Session, model: type[Base], values: dict[str, Any], key: str) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING; True when this call inserted the row.

    How repeats become no-ops: a Twilio retry, a second worker or a re-run escalation step tries
    to insert the same row again and simply doesn't.
    """
    table = Base.metadata.tables[model.__tablename__]
    # RETURNING, because rowcount is not reliable for this on every driver.
    statement = (
        insert_for(session)(table).values(values).on_conflict_do_nothing(index_elements=[key])
    ).returning(table.c[key])
    return session.execute(statement).first() is not None


def insert_for(session: Session) -> Callable[[Table], Any]:
    """The dialect's own INSERT, the one that knows ON CONFLICT."""
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


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
