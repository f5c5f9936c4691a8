"""Fixtures every test can use: a fresh database, settings, the app, a client and a clock.

The databases come from tests/databases.py: SQLite, or PostgreSQL when
NIGHTDESK_TEST_DATABASE_URL names a server.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import sync_flows
from app.db import make_engine, make_session_factory, transaction
from app.flows.loader import load_flows, parse_flow
from app.main import create_app
from app.settings import Settings, get_settings
from tests.clock import FakeClock
from tests.databases import (
    TEST_DATABASE_URL,
    PostgresDatabases,
    SqliteDatabases,
    postgres_server_url,
)

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "https://nightdesk.test"
AUTH_TOKEN = "test-auth-token"


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a NIGHTDESK_TEST_DATABASE_URL that is not PostgreSQL before any test runs."""
    postgres_server_url()


def pytest_report_header(config: pytest.Config) -> str:
    """Name the backend at the top of the output, so a log shows what the run tested."""
    server = postgres_server_url()
    if server is None:
        return f"database: SQLite, a fresh file per test ({TEST_DATABASE_URL} unset)"
    return f"database: PostgreSQL at {server.render_as_string(hide_password=True)}"


# --- one migrated database per session, a fresh one per test --------------------------------


@pytest.fixture(scope="session")
def _databases(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SqliteDatabases | PostgresDatabases]:
    server = postgres_server_url()
    if server is None:
        yield SqliteDatabases(tmp_path_factory.mktemp("template"))
        return
    databases = PostgresDatabases(server)
    try:
        yield databases
    finally:
        databases.drop()


@pytest.fixture
def database_url(_databases: SqliteDatabases | PostgresDatabases, tmp_path: Path) -> str:
    """A migrated, empty database for this test alone."""
    return _databases.fresh(tmp_path)


@pytest.fixture
def session_factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test's database, for arranging rows and asserting on them."""
    engine = make_engine(database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


# --- the app, as a test sees it ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests see only the settings they build: no NIGHTDESK_* from the shell leaks in."""
    for name in list(os.environ):
        if name.startswith("NIGHTDESK_") and name != TEST_DATABASE_URL:
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def clock() -> FakeClock:
    """The app's "now", Thursday 2026-11-26 02:00 UTC until the test moves it."""
    return FakeClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Development settings on the test's database, signing with a known Twilio token.

    The dispatcher does not notify: tests run it by hand under their clock, or start it on
    purpose (the server's thread only replays the test's own, empty, spool).
    """
    return Settings(
        _env_file=None,
        environment="development",
        database_url=database_url,
        spool_dir=tmp_path / "spool",
        public_url=PUBLIC_URL,
        twilio_auth_token=AUTH_TOKEN,
        twilio_previous_auth_token="",
        flows_dir=ROOT / "voice_flows",
        run_dispatcher=False,
        sandbox="off",  # tests that need a fake Twilio start their own
    )


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[FastAPI]:
    """The application, reading the test's clock."""
    application = create_app(settings, clock=clock)
    try:
        yield application
    finally:
        application.state.engine.dispose()  # also when no client ran the lifespan


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An HTTP client at the public URL (what Twilio signs), with the app's lifespan running."""
    with TestClient(app, base_url=PUBLIC_URL) as test_client:
        yield test_client


@pytest.fixture
def flows_dir(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo flows, and the `nightdesk` command pointed at this test's database."""
    folder = tmp_path / "voice_flows"
    shutil.copytree(ROOT / "voice_flows", folder)
    monkeypatch.setenv("NIGHTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("NIGHTDESK_FLOWS_DIR", str(folder))
    monkeypatch.setenv("NIGHTDESK_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    return folder


# --- clients, loaded as `nightdesk flows sync` loads them ---------------------------------


@pytest.fixture
def demo_clients(session_factory: sessionmaker[Session]) -> None:
    """The three demo clients from voice_flows/, as `nightdesk demo` loads them."""
    loaded, problems = load_flows([ROOT / "voice_flows"])
    assert not problems
    with transaction(session_factory) as session:
        sync_flows(session, loaded)


@pytest.fixture
def load_client(session_factory: sessionmaker[Session]) -> Callable[[str], None]:
    """Load a client from a YAML snippet, as `nightdesk flows sync` would."""

    def load(snippet: str) -> None:
        loaded = parse_flow(textwrap.dedent(snippet), "test.yaml")
        with transaction(session_factory) as session:
            sync_flows(session, [loaded])

    return load
