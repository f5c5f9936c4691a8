"""Prepared statements: the models' own SQL, defaults and types, on either database."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.models import Call
from app.clients.models import Client
from app.db import insert_ignoring, transaction
from app.prepared import Prepared

CALLS = Call.metadata.tables[Call.__tablename__]
NOW = dt.datetime(2026, 12, 24, 23, 30, tzinfo=dt.UTC)

_NEW_CALL = Prepared(
    insert(CALLS).returning(CALLS.c.id, CALLS.c.status, CALLS.c.turn, CALLS.c.state)
)
_CALL = Prepared(select(CALLS.c.state, CALLS.c.started_at).where(CALLS.c.sid == bindparam("sid")))
_CALL_ONCE = Prepared(insert_ignoring(CALLS, "sid", returning="id"))


def test_an_insert_gets_the_models_python_defaults_and_json_comes_back_as_json(
    session_factory: sessionmaker[Session],
) -> None:
    with transaction(session_factory) as session:
        given = {"sid": "CA1", "caller": "+447911123456", "called": "+441134960000"}
        row = _NEW_CALL.first(session, {**given, "state": {"step": "greet"}})
        assert row is not None
        _call_id, status, turn, state = row
        assert (status, turn, state) == ("in-progress", 0, {"step": "greet"})
    with transaction(session_factory) as session:
        found = _CALL.first(session, {"sid": "CA1"})
        assert found is not None
        assert found[0] == {"step": "greet"}
        assert isinstance(found[1], dt.datetime)  # started_at: the column's default, now


def test_insert_ignoring_inserts_once_and_says_so(session_factory: sessionmaker[Session]) -> None:
    values = {"sid": "CA2", "caller": "", "called": "", "state": {}, "started_at": NOW}
    with transaction(session_factory) as session:
        first = _CALL_ONCE.scalar(session, values)
        again = _CALL_ONCE.scalar(session, values)
    assert isinstance(first, int)
    assert again is None
    with session_factory() as session:
        assert session.scalar(select(Call.started_at).where(Call.sid == "CA2")) is not None


def test_a_prepared_query_sees_what_the_session_has_pending(
    session_factory: sessionmaker[Session],
) -> None:
    clients = Prepared(select(Client.slug).where(Client.name == bindparam("name")))
    with transaction(session_factory) as session:
        session.add(Client(slug="acme", name="Acme", timezone="Europe/London"))
        assert clients.all(session, {"name": "Acme"}) == [("acme",)]


def test_values_written_into_the_statement_are_bound_as_written(
    session_factory: sessionmaker[Session],
) -> None:
    acme = Prepared(
        select(Client.slug).where(Client.name == "Acme", Client.slug != bindparam("not"))
    )
    with transaction(session_factory) as session:
        session.add(Client(slug="acme", name="Acme", timezone="Europe/London"))
        assert acme.all(session, {"not": "other"}) == [("acme",)]
        assert acme.all(session, {"not": "acme"}) == []


def test_an_in_list_is_refused_rather_than_bound_wrongly(
    session_factory: sessionmaker[Session],
) -> None:
    by_slug = Prepared(select(Client.id).where(Client.slug.in_(["acme", "riverside"])))
    with transaction(session_factory) as session, pytest.raises(ValueError, match="IN list"):
        by_slug.all(session)
