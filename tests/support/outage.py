"""A database that is down, as the app sees one: every statement refused by the driver.

The driver's own OperationalError is raised where a statement would go out to the server, so
SQLAlchemy wraps it exactly as when PostgreSQL has stopped or SQLite cannot write, and every
path in the app (the SQLite writer's BEGIN, a PostgreSQL unit's first statement) meets it.
Stopping a real server is what `bench.faults` does; in-process tests need the outage to begin
and end at a line of the test.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import Engine, event


class Outage:
    """`with Outage(engine):` the database refuses everything until the block ends."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.refused = 0  # statements refused so far

    def _refuse(self, connection: Any, *_args: Any) -> None:
        self.refused += 1
        raise connection.dialect.loaded_dbapi.OperationalError("the database is down")

    def __enter__(self) -> Outage:
        event.listen(self.engine, "before_cursor_execute", self._refuse)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        event.remove(self.engine, "before_cursor_execute", self._refuse)
