"""An app with the development sandbox running, as `nightdesk demo` starts it: the fake Twilio
over HTTP and a real SMTP inbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from app.telephony.sandbox.services import Sandboxes, start_sandboxes
from tests.clock import FakeClock


@pytest.fixture
def printed() -> list[str]:
    """The lines the sandbox announces, as the demo prints them."""
    return []


@pytest.fixture
def sandboxes(settings: Settings, printed: list[str]) -> Sandboxes:
    # An in-process app has no port for the fake's status callbacks: they go nowhere.
    return start_sandboxes(
        settings.model_copy(update={"sandbox": "on"}),
        printed.append,
        deliver=lambda _url, _form, _headers: None,
    )


@pytest.fixture
def app(sandboxes: Sandboxes, clock: FakeClock) -> Iterator[FastAPI]:
    """The app with the sandbox; its lifespan (the `client` fixture) stops the sandbox."""
    application = create_app(sandboxes.settings, clock=clock, sandboxes=sandboxes)
    try:
        yield application
    finally:
        application.state.engine.dispose()
