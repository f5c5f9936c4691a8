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
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import psycopg
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    create_engine,
    event,
    make_url,
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


def make_engine(url: str, *, ping_after: float = 1.0, lock_wait: float = 30) -> Engine:
    """An engine tuned for the backend. Statement parameters never appear in its errors: they
    carry callers' numbers, and errors end up in logs.

    SQLite: WAL, transactions that take the write lock as they begin, and `lock_wait` seconds
    to wait for it when another connection holds it.
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
            connect_args={"check_same_thread": False, "timeout": lock_wait},
            hide_parameters=True,
            # In memory, every connection would be a database of its own: share one.
            **({"poolclass": StaticPool} if in_memory else {}),
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # A fixed set of connections, enough for the unit threads, the dispatcher and the API: an
    # overflow connection costs PostgreSQL a new process, and is closed again once returned.
    # A server that vanished without a word (a dropped network) must not hang a webhook or the
    # dispatcher for the kernel's two minutes: connecting gives up after 5 s, and keepalives
    # find a dead connection mid-query within about 30 s.
    keepalives = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                  "keepalives_count": 4}  # fmt: skip
    engine = create_engine(
        url, pool_size=8, max_overflow=4, hide_parameters=True,
        connect_args={"connect_timeout": 5, **keepalives},
    )  # fmt: skip
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


class DatabaseNotReadyError(RuntimeError):
    """The database isn't there, or has no tables yet; the message says what to run."""


NOT_READY = "run `nightdesk db upgrade` (or `nightdesk demo`, which also loads the demo clients)"


def sessions_for_command(url: str) -> sessionmaker[Session]:
    """Sessions for a `nightdesk` command that reads or changes rows: a SQLite file that isn't
    there is refused, saying what to run, rather than created empty."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            raise DatabaseNotReadyError(f"there is no database at {path} yet: {NOT_READY}")
    return make_session_factory(make_engine(url))


def explain_database_error(error: Exception) -> str | None:
    """One line for a person, for the database errors a command meets, or None."""
    text = str(getattr(error, "orig", error) or error).lower()
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return f"the database has no tables yet: {NOT_READY}"
    if "connection refused" in text or "could not connect" in text or "unable to open" in text:
        return "could not reach the database (NIGHTDESK_DATABASE_URL): is it running?"
    return None


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
    """One writer per process for a SQLite database, on the event loop, with group commit.

    SQLite's work runs inside this process, holding the GIL: a writer thread would add no
    parallelism, only hand-offs of the GIL with the event loop at every statement, and those
    cost a webhook more than its SQL (`python -m bench`). So units run on the event loop, and
    the units that arrive in one pass of the loop share one transaction (group commit: the
    COMMIT, not the SQL, is what costs). Each unit gets a session of its own, and its result
    goes back only after the shared COMMIT. The process's other threads (the dispatcher) hand
    their units to the loop too; with no loop running (a command, a worker) they write in
    their own thread.

    Other processes meet the writer at SQLite's lock, and the loop never waits for it: the
    engine's busy timeout is zero, and a batch that finds the lock taken waits on a thread.

    If a unit fails, nothing of its batch was kept: it gets its error, and the other units run
    again without it; if the COMMIT fails, each unit runs again alone. (Savepoints would undo
    one unit without the rerun, but SQLAlchemy compiles SAVEPOINT and RELEASE afresh each time:
    they cost more than the unit's own statements.) So a unit may run twice: what it does
    outside the database must be harmless to repeat (logs, metrics).
    """

    MAX_BATCH = 128
    LOCK_WAIT_MS = 30_000  # how long a batch on a thread waits for another process's lock

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_session_factory(engine)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Unit] = []
        self._waiting_for_lock = False  # a batch waits on a thread: the next ones wait for it
        self._writing = threading.local()  # `now`: this thread is inside a unit of work

    async def run(self, work: Work[T]) -> T:
        self._loop = loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._add(_Unit(work, future, loop))
        return await future

    def run_blocking(self, work: Work[T]) -> T:
        if getattr(self._writing, "now", False):
            raise RuntimeError("a unit of work cannot wait for another one: it would wait forever")
        loop = self._loop
        future: Future[T] = Future()
        unit = _Unit(work, future, None)
        if loop is not None and loop.is_running():
            if _running_loop() is loop:
                raise RuntimeError("on the event loop, use `await database.run(work)`")
            loop.call_soon_threadsafe(self._add, unit)
        else:  # no loop writes for this process: this thread does
            self._write_alone(unit, wait=True)
            _settle([unit])
        return future.result()

    def close(self) -> None:
        self.engine.dispose()

    def _add(self, unit: _Unit) -> None:
        """On the loop: the unit joins the next batch, written on the loop's next pass."""
        self._pending.append(unit)
        if len(self._pending) == 1 and not self._waiting_for_lock:
            asyncio.get_running_loop().call_soon(self._write_pending)

    def _write_pending(self) -> None:
        batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
        loop = asyncio.get_running_loop()
        if self._pending:
            loop.call_soon(self._write_pending)
        try:
            self._write_batch(batch, wait=False)
        except _LockTakenError:  # by another process: wait for it on a thread, not on the loop
            self._waiting_for_lock = True
            unwritten = [unit for unit in batch if unit.error is None]  # (a failed one is done)
            waited = loop.run_in_executor(None, self._write_batch, unwritten, True)
            waited.add_done_callback(lambda _done: self._lock_waited(batch))
            return
        _settle(batch)

    def _lock_waited(self, batch: list[_Unit]) -> None:
        self._waiting_for_lock = False
        _settle(batch)
        if self._pending:
            asyncio.get_running_loop().call_soon(self._write_pending)

    def _write_batch(self, batch: list[_Unit], wait: bool) -> None:
        """Every unit in one transaction. If a unit fails, it gets its error and the others go
        again without it; if the COMMIT fails, each unit goes again alone."""
        try:
            self._write(batch, wait)
        except _LockTakenError:
            raise
        except _UnitFailedError as failed:
            failed.unit.error = failed.__cause__
            others = [unit for unit in batch if unit is not failed.unit]
            if others:
                self._write_batch(others, wait)
        except BaseException:
            for unit in batch:
                self._write_alone(unit, wait)

    def _write(self, batch: list[_Unit], wait: bool) -> None:
        """Every unit of `batch` in one transaction (BEGIN IMMEDIATE ... COMMIT), or none."""
        with self.engine.connect() as connection:
            if wait:
                _wait_for_lock(connection, self.LOCK_WAIT_MS)
            try:
                transaction = connection.begin()
            except OperationalError as exc:
                if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
                    raise _LockTakenError from exc
                raise
            with transaction:
                for unit in batch:
                    # The unit's own session: it sees the database, never another unit's
                    # objects. Its commit only flushes; the batch's COMMIT makes it durable.
                    with self.sessions(bind=connection, join_transaction_mode="rollback_only") as s:
                        try:
                            unit.result = self._inside(unit.work, s)
                            s.commit()
                        except Exception as exc:  # rolls the batch back, then see _write_batch
                            raise _UnitFailedError(unit) from exc
            if wait:
                _wait_for_lock(connection, 0)

    def _inside(self, work: Work[T], session: Session) -> T:
        """Run `work`, noting that this thread is inside a unit (see run_blocking)."""
        self._writing.now = True
        try:
            return work(session)
        finally:
            self._writing.now = False

    def _write_alone(self, unit: _Unit, wait: bool) -> None:
        unit.result = None
        try:
            self._write([unit], wait)
        except _UnitFailedError as failed:
            unit.error = failed.__cause__
        except BaseException as exc:  # the unit's own outcome, handed back to its caller
            unit.error = exc


def _wait_for_lock(connection: Connection, milliseconds: int) -> None:
    """How long this connection waits for another's write lock: a setting of the connection,
    outside any transaction, as the connect event's pragmas are."""
    driver: Any = connection.connection.dbapi_connection
    driver.execute(f"PRAGMA busy_timeout = {milliseconds}")


class _UnitFailedError(Exception):
    """A unit of a batch raised: the batch is rolled back, and the unit gets its own error."""

    def __init__(self, unit: _Unit) -> None:
        super().__init__()
        self.unit = unit


class _LockTakenError(Exception):
    """Another process holds SQLite's write lock."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(batch: list[_Unit]) -> None:
    """Hand each unit its outcome, on its own loop: one wake-up for each other loop, not one
    a unit."""
    here = _running_loop()
    for_loops: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
    for unit in batch:
        if unit.loop is None or unit.loop is here:
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
    if url.startswith("sqlite"):
        return SqliteWriter(make_engine(url, lock_wait=0))  # the loop never waits: see there
    return ThreadedDatabase(make_engine(url))


# --- statements every concept uses ----------------------------------------------------------


def insert_if_absent(session: Session, model: type[Base], values: dict[str, Any], key: str) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING; True when this call inserted the row.

    How repeats become no-ops: a Twilio retry, a second worker or a re-run escalation step tries
    to insert the same row again and simply doesn't.
    """
    return insert_returning(session, model, key, key, values) is not None


def insert_returning(
    session: Session, model: type[Base], key: str, returning: str, values: dict[str, Any]
) -> Any:
    """INSERT … ON CONFLICT (key) DO NOTHING RETURNING (returning): the new row's column, or
    None when a row with that key was there already. RETURNING, because rowcount is not
    reliable for this on every driver."""
    statement = _insert_if_absent(session.get_bind().dialect.name, model, key, returning)
    return session.execute(statement, values).scalar()


@cache
def _insert_if_absent(dialect: str, model: type[Base], key: str, returning: str) -> Any:
    """Built once and run with the row as parameters: SQLAlchemy builds, and keys for its
    cache, a statement whose `.values()` hold the row afresh every time, at more cost than the
    INSERT itself."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = Base.metadata.tables[model.__tablename__]
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[returning])


LISTEN_CHECKS_STOP_EVERY = 0.1  # seconds: how long stopping a listener can take


def listen(
    database_url: str, channel: str, stop: threading.Event, heard: Callable[[str | None], None]
) -> None:
    """PostgreSQL LISTEN on `channel` until `stop` is set: `heard(payload)` for each notice,
    and `heard(None)` on each (re)connection, since notices sent while away are gone.

    Reconnects after a lost connection, a second later. Between notices it looks at `stop`
    every LISTEN_CHECKS_STOP_EVERY seconds, so a shutdown never waits on it for longer."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"LISTEN {channel}")
                heard(None)
                while not stop.is_set():
                    for notice in connection.notifies(timeout=LISTEN_CHECKS_STOP_EVERY):
                        heard(notice.payload)
        except psycopg.Error:
            log.warning("listen_lost", extra={"channel": channel}, exc_info=True)
            stop.wait(1.0)


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
