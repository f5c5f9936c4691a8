"""A voice turn costs PostgreSQL three round trips: the call row, one statement writing the turn
and its timeline, COMMIT. Twilio waits on every one of them, on every step of every call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.settings import Settings
from app.telephony.sandbox.signing import signed_post
from tests.calls.conftest import ACME, CALLER
from tests.conftest import AUTH_TOKEN

pytestmark = pytest.mark.usefixtures("demo_clients")


class RoundTrips:
    """Statements and COMMITs sent to the database while counting."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def statement(self, _conn: object, _cursor: object, sql: str, *_args: object) -> None:
        self.sent.append(sql.split(None, 1)[0].upper())

    def commit(self, _conn: object) -> None:
        self.sent.append("COMMIT")


@pytest.fixture
def round_trips(app: FastAPI, settings: Settings) -> Iterator[RoundTrips]:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite runs in this process: a statement is a function call, not a trip")
    counting = RoundTrips()
    engine = app.state.database.engine
    event.listen(engine, "before_cursor_execute", counting.statement)
    event.listen(engine, "commit", counting.commit)
    yield counting
    event.remove(engine, "before_cursor_execute", counting.statement)
    event.remove(engine, "commit", counting.commit)


def voice(sid: str, **fields: str) -> dict[str, str]:
    return {"CallSid": sid, "From": CALLER, "To": ACME, "CallStatus": "in-progress", **fields}


def test_each_voice_turn_costs_three_round_trips(
    client: TestClient, settings: Settings, round_trips: RoundTrips
) -> None:
    def post(path: str, params: dict[str, str]) -> str:
        response = signed_post(client, settings.public_url, path, params, AUTH_TOKEN)
        assert response.status_code == 200
        return response.text

    post("/twilio/voice", voice("CA" + "0" * 32))  # the flow is read once, then remembered
    round_trips.sent.clear()

    assert "turn=1" in post("/twilio/voice", voice("CA" + "1" * 32))
    assert round_trips.sent == ["INSERT", "WITH", "COMMIT"]  # the call; its turn and timeline
    round_trips.sent.clear()

    assert "turn=2" in post("/twilio/voice/step?turn=1", voice("CA" + "1" * 32, Digits="2"))
    assert round_trips.sent == ["SELECT", "WITH", "COMMIT"]  # the call, locked; its turn
