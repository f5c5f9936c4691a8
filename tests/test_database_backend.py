"""The harness runs each test on the backend the environment names, in a database of its own."""

from __future__ import annotations

import os
import time

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.clients.models import Client
from app.db import Base, make_engine
from tests.databases import TEST_DATABASE_URL


def test_the_backend_in_use_is_the_one_the_environment_names(
    app: FastAPI, session_factory: sessionmaker[Session]
) -> None:
    expected = "postgresql" if os.environ.get(TEST_DATABASE_URL) else "sqlite"
    assert app.state.settings.is_sqlite == (expected == "sqlite")
    assert app.state.engine.dialect.name == expected
    with session_factory() as session:
        assert session.get_bind().dialect.name == expected
        if expected == "postgresql":
            database = session.scalar(text("SELECT current_database()"))
            assert str(database).startswith("nightdesk_test_")


@pytest.mark.parametrize("run", ["first", "second"])
def test_every_test_starts_with_empty_tables_and_fresh_ids(
    session_factory: sessionmaker[Session], run: str
) -> None:
    with session_factory() as session:
        for table in Base.metadata.sorted_tables:
            count = session.scalar(select(func.count()).select_from(table))
            assert count == 0, f"{table.name} has rows left by another test"
        client = Client(slug=f"acme-{run}", name="Acme", timezone="Europe/London")
        session.add(client)
        session.commit()
        assert client.id == 1


def pooled_connection_pid(engine: Engine) -> int:
    """Use the pool's one connection, and say which PostgreSQL backend serves it."""
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def drop_connection(database_url: str, pid: int) -> None:
    """What a PostgreSQL restart (or a firewall's idle timeout) does to a pool's connections."""
    engine = make_engine(database_url)
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    engine.dispose()


def test_a_pooled_connection_postgresql_dropped_while_idle_is_replaced_before_use(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to drop connections")
    engine = make_engine(database_url, ping_after=0.2)
    try:
        drop_connection(database_url, pooled_connection_pid(engine))
        time.sleep(0.3)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_a_connection_dropped_just_after_use_fails_once_then_the_pool_recovers(
    database_url: str,
) -> None:
    """Returned a moment ago, a connection is used unpinged (a round trip saved per webhook):
    if it died in that moment, that one use fails (a caller would hear the voicemail that needs
    no database) and the pool starts afresh."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to drop connections")
    engine = make_engine(database_url, ping_after=60)
    try:
        drop_connection(database_url, pooled_connection_pid(engine))
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
