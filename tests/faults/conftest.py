"""The fault suite: `nightdesk serve` as a real process on the test's database, the fake Twilio
in this process, a client per caller loaded as `nightdesk flows sync` loads them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import sync_flows
from app.db import transaction
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.faults.service import parsed_flows

CALLS = 8


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def clients(session_factory: sessionmaker[Session]) -> int:
    with transaction(session_factory) as session:
        sync_flows(session, parsed_flows(CALLS))
    return CALLS
