"""Privacy mode's read log from the client's side: every read of a message (the portal, the API,
an export, the operator's command line) is written down with who and when, and the client sees
it on the message's page and in the API; another client sees nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.flows.pins import hash_pin
from app.messages.models import MessageRead
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.accounts.conftest import AddPerson, sign_in
from tests.conftest import PUBLIC_URL
from tests.support.cli import nightdesk
from tests.support.clients import HARBOUR, Clients, bearer

PRIVATE = f"""
    privacy:
      pin: "{hash_pin("2468")}"
"""


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(settings.twilio_account_sid, settings.twilio_auth_token) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    """Recordings come from the fake Twilio, over HTTP."""
    return settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})


@pytest.fixture
def private(clients: Clients, load_client: Callable[[str], None]) -> Clients:
    """Harbour Plumbing in privacy mode; Bright Dental not."""
    load_client(HARBOUR + PRIVATE)
    return clients


def reads(http: TestClient, message_id: int, key: str) -> list[tuple[str, str]]:
    response = http.get(f"/api/v1/messages/{message_id}/reads", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [(read["reader"], read["via"]) for read in response.json()]


def test_each_read_is_logged_and_the_client_sees_who_read_it_and_where(
    owner: TestClient, private: Clients, session_factory: sessionmaker[Session]
) -> None:
    message = private.leave_message("harbour-plumbing", name="Kim", problem="Burst pipe")
    key = private.api_key("harbour-plumbing")

    page = owner.get(f"/portal/messages/{message}")
    assert page.status_code == 200
    log = page.text.split("Who has read it", 1)[1]
    assert "Hana Owner" in log
    assert "the portal" in log

    assert owner.get(f"/api/v1/messages/{message}", headers=bearer(key)).status_code == 200
    assert owner.get("/api/v1/messages", headers=bearer(key)).status_code == 200
    assert owner.get("/api/v1/messages.csv", headers=bearer(key)).status_code == 200

    logged = reads(owner, message, key)
    assert [via for _, via in logged] == ["portal", "api", "api", "export"]
    assert logged[0][0] == "Hana Owner"
    assert all(reader.startswith("API key ") for reader, _ in logged[1:])
    with session_factory() as session:  # reading the log is not itself a read
        assert session.scalar(select(func.count()).select_from(MessageRead)) == 4


def test_playing_the_recording_is_a_read_in_the_portal_and_the_api(
    owner: TestClient, private: Clients, fake_twilio: FakeTwilio
) -> None:
    recording = fake_twilio.add_recording(b"ID3 Kim's voicemail")
    message = private.leave_message("harbour-plumbing", name="Kim", recording_url=recording)
    key = private.api_key("harbour-plumbing")

    assert owner.get(f"/portal/messages/{message}/recording").status_code == 200
    api = owner.get(f"/api/v1/messages/{message}/recording", headers=bearer(key))
    assert api.status_code == 200

    assert [via for _, via in reads(owner, message, key)] == ["portal-audio", "api-audio"]


def test_a_client_without_privacy_mode_has_no_read_log(
    owner: TestClient, private: Clients, session_factory: sessionmaker[Session]
) -> None:
    message = private.leave_message("bright-dental", name="Bo")
    key = private.api_key("bright-dental")

    assert owner.get(f"/api/v1/messages/{message}", headers=bearer(key)).status_code == 200

    assert reads(owner, message, key) == []
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(MessageRead)) == 0


def test_another_clients_user_and_key_find_neither_the_message_nor_its_log(
    app: FastAPI, owner: TestClient, private: Clients, add_person: AddPerson,
    session_factory: sessionmaker[Session],
) -> None:  # fmt: skip
    message = private.leave_message("harbour-plumbing", name="Kim")
    owner.get(f"/portal/messages/{message}")  # one read, by Hana
    add_person("owner@bright.test", Role.client, client="bright-dental", name="Bea Bright")
    other = TestClient(app, base_url=PUBLIC_URL)
    assert sign_in(other, "owner@bright.test").status_code == 303
    bright_key = bearer(private.api_key("bright-dental"))

    for response in (
        other.get(f"/portal/messages/{message}"),
        other.get(f"/api/v1/messages/{message}/reads"),
        other.get(f"/api/v1/messages/{message}/reads", headers=bright_key),
        other.get(f"/api/v1/messages/{message}", headers=bright_key),
    ):
        assert response.status_code == 404
        assert "Hana" not in response.text
        assert "Kim" not in response.text
    with session_factory() as session:  # and their attempts read nothing, so log nothing
        readers = session.scalars(select(MessageRead.reader)).all()
    assert readers == ["Hana Owner"]


def test_the_operators_messages_show_and_list_are_reads_too(
    private: Clients, flows_dir: Path, session_factory: sessionmaker[Session]
) -> None:
    message = private.leave_message("harbour-plumbing", name="Kim")
    private.leave_message("bright-dental", name="Bo")  # no privacy mode: not logged

    code, output = nightdesk("messages", "show", str(message))
    assert code == 0
    assert "Kim" in output
    code, output = nightdesk("messages", "list")
    assert code == 0
    assert "Bo" in output

    with session_factory() as session:
        reads = session.scalars(select(MessageRead)).all()
    assert [(read.message_id, read.via) for read in reads] == [(message, "cli")] * 2
    assert all(read.reader.startswith("operator ") for read in reads)
