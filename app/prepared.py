"""Prepared statements: Core SQL compiled once per database, run on the driver's own connection.

The voice webhooks and message saving run a handful of small statements each, thousands of
times a second. `Connection.execute()` spends about 35 µs of Python on every one (execution
context, events, cache keys, result objects) against 3 µs for the driver itself
(`python -m bench.webhooks`). A `Prepared` keeps everything SQLAlchemy knows (the models' SQL,
the dialect's quoting, bind and result types, Python-side column defaults) and skips the rest.
It runs inside the session's transaction, on the same connection, so it mixes freely with ORM
work in one unit of work.

Supported: plain INSERT/UPDATE/DELETE/SELECT with named bind parameters (no IN lists).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]
Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Bind:
    name: str
    default: Callable[[], Any] | None  # a Python-side column default, for a column not given
    convert: Processor | None  # Python value -> driver value, where the type needs it


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[_Bind, ...]  # in the SQL's order
    named: bool  # the driver takes a dict (psycopg), not a sequence (sqlite3)
    results: tuple[tuple[int, Processor], ...]  # driver value -> Python value, by column


def _bind(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = []
    for bind in compiled.binds:
        value = params.get(bind.name) if bind.default is None else bind.default()
        if bind.convert is not None and value is not None:
            value = bind.convert(value)
        values.append(value)
    if compiled.named:
        return {bind.name: value for bind, value in zip(compiled.binds, values, strict=True)}
    return values


def _convert(compiled: _Compiled, row: Row) -> Row:
    if not compiled.results:
        return row
    values = list(row)
    for index, convert in compiled.results:
        if values[index] is not None:
            values[index] = convert(values[index])
    return tuple(values)


class Prepared:
    """One Core statement; compiled on first use for each database and set of columns.

    `statement` may be a function of the dialect's name, for SQL that differs by database
    (INSERT ... ON CONFLICT is built by each dialect's own `insert`).
    """

    def __init__(self, statement: ClauseElement | Callable[[str], ClauseElement]) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}

    def all(self, session: Session, params: Mapping[str, Any] | None = None) -> list[Row]:
        compiled, cursor = self._run(session, params or {})
        return [_convert(compiled, row) for row in cursor.fetchall()]

    def first(self, session: Session, params: Mapping[str, Any] | None = None) -> Row | None:
        compiled, cursor = self._run(session, params or {})
        row = cursor.fetchone()
        return None if row is None else _convert(compiled, row)

    def scalar(self, session: Session, params: Mapping[str, Any] | None = None) -> Any:
        row = self.first(session, params)
        return None if row is None else row[0]

    def execute(self, session: Session, params: Mapping[str, Any] | None = None) -> int:
        """A statement without results (UPDATE, DELETE, INSERT): the rows it touched."""
        rowcount: int = self._run(session, params or {})[1].rowcount
        return rowcount

    def many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """The same statement for each row of parameters (no RETURNING)."""
        if len(rows) == 1:  # psycopg's executemany sets up a pipeline: not worth it for one
            self._run(session, rows[0])
        elif rows:
            compiled, cursor = self._cursor(session, rows[0])
            cursor.executemany(compiled.sql, [_bind(compiled, row) for row in rows])

    def _run(self, session: Session, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled, cursor = self._cursor(session, params)
        cursor.execute(compiled.sql, _bind(compiled, params))
        return compiled, cursor

    def _cursor(self, session: Session, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        if session.autoflush:  # as an ORM query would: see what the session has pending
            session.flush()
        return self._for(session, params), _cursor(session)

    def _for(self, session: Session, params: Mapping[str, Any]) -> _Compiled:
        dialect = _dialect(session)
        key = (dialect.name, frozenset(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            statement = self.statement
            if not isinstance(statement, ClauseElement):
                statement = statement(dialect.name)
            compiled = self._compiled[key] = _compile(statement, dialect, sorted(params))
        return compiled


def _cursor(session: Session) -> Any:
    """A DB-API cursor on the connection of the session's transaction.

    One for the rest of the transaction, used by one statement after another (each reads its
    results before the next runs): looking the connection up costs more than a statement, and
    a new psycopg cursor copies the connection's adapters.
    """
    remembered = session.info.get(_CURSOR)
    transaction = session.get_transaction()
    if remembered is not None and transaction is not None and remembered[0] is transaction:
        return remembered[1]
    driver: Any = session.connection().connection.dbapi_connection  # begins, if need be
    cursor = driver.cursor()
    session.info[_CURSOR] = (session.get_transaction(), cursor)
    return cursor


_CURSOR = "prepared_cursor"


def _dialect(session: Session) -> Dialect:
    dialect = session.info.get(_DIALECT)
    if dialect is None:
        dialect = session.info[_DIALECT] = session.get_bind().dialect
    return cast(Dialect, dialect)


_DIALECT = "prepared_dialect"


def _compile(statement: ClauseElement, dialect: Dialect, keys: list[str]) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=keys)
    assert isinstance(compiled, SQLCompiler)
    defaults = {
        column.key: _default_of(column)
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch)
        if column.key not in keys
    }
    rendered = {name: bind for bind, name in compiled.bind_names.items()}
    if any(bind.expanding for bind in rendered.values()):
        raise ValueError("a prepared statement cannot take an IN list: use the ORM for that one")
    for name, bind in rendered.items():  # literals in the statement: `kind == "notify"`
        if name not in keys and name not in defaults and bind.value is not None:
            defaults[name] = _constant(bind.effective_value)
    # The same per-type bind processors SQLAlchemy's own execution applies (JSON, SQLite dates).
    converters = cast(dict[str, Processor], compiled._bind_processors)
    names = compiled.positiontup if compiled.positiontup is not None else list(rendered)
    # A SELECT's columns, or what an INSERT/UPDATE ... RETURNING gives back.
    columns: Any = getattr(statement, "selected_columns", None)
    if columns is None:
        columns = getattr(statement, "exported_columns", ())
    processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    return _Compiled(
        sql=compiled.string,
        binds=tuple(_Bind(name, defaults.get(name), converters.get(name)) for name in names),
        named=compiled.positiontup is None,
        results=tuple((i, p) for i, p in enumerate(processors) if p is not None),
    )


def _default_of(column: Any) -> Callable[[], Any]:
    default = column.default if column.default is not None else column.onupdate
    if default.is_callable:
        return lambda: default.arg(None)
    return _constant(default.arg)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value
