"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from pathlib import Path
from pprint import pformat

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import app.models  # noqa: F401 - registers every table on Base.metadata
from app.db import Base, make_engine

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def test_the_migrated_database_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "write a migration for:\n" + pformat(differences)


def test_the_database_is_at_the_newest_migration(database_url: str) -> None:
    scripts = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    assert set(current) == set(scripts.get_heads())
