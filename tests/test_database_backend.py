"""The harness runs each test on the backend the environment names, in a database of its own."""

from __future__ import annotations

import os

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.clients.models import Client
from app.db import Base
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
