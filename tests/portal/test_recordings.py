"""A caller's recording plays through Nightdesk: fetched from (fake) Twilio over HTTP with the
account's credentials, so the page never carries Twilio's URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.support.clients import Clients, bearer

VOICE = b"ID3\x04\x00 the caller's voice, as Twilio stores it" * 100


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(settings.twilio_account_sid, settings.twilio_auth_token) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})


def test_a_recording_plays_through_nightdesk_and_twilios_url_never_reaches_the_page(
    owner: TestClient, clients: Clients, fake_twilio: FakeTwilio
) -> None:
    twilio_url = fake_twilio.add_recording(VOICE)
    message = clients.leave_message("harbour-plumbing", recording_url=twilio_url, name="Kim")

    page = owner.get(f"/portal/messages/{message}")
    audio = owner.get(f"/portal/messages/{message}/recording")

    assert f'src="/portal/messages/{message}/recording"' in page.text
    assert "twilio.com" not in page.text
    assert twilio_url.rsplit("/", 1)[1] not in page.text  # not even the recording's sid
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"
    assert audio.content == VOICE
    (fetched,) = fake_twilio.requests
    assert fetched.path.endswith(".mp3")
    assert fetched.status == 200  # the fake checked the account's credentials


def test_the_api_plays_the_recording_too(
    client: TestClient, clients: Clients, fake_twilio: FakeTwilio
) -> None:
    message = clients.leave_message(
        "harbour-plumbing", recording_url=fake_twilio.add_recording(VOICE), name="Kim"
    )

    audio = client.get(
        f"/api/v1/messages/{message}/recording", headers=bearer(clients.api_key("harbour-plumbing"))
    )

    assert (audio.status_code, audio.content) == (200, VOICE)


def test_a_recording_twilio_no_longer_has_is_a_page_that_says_so(
    owner: TestClient, clients: Clients, fake_twilio: FakeTwilio
) -> None:
    gone = fake_twilio.add_recording().replace("/Recordings/RE", "/Recordings/REgone")
    message = clients.leave_message("harbour-plumbing", recording_url=gone, name="Kim")

    audio = owner.get(f"/portal/messages/{message}/recording")

    assert audio.status_code == 502
    assert "could not be fetched just now" in audio.text


def test_another_clients_recording_is_not_found_and_twilio_is_never_asked(
    owner: TestClient, clients: Clients, fake_twilio: FakeTwilio
) -> None:
    theirs = clients.leave_message(
        "bright-dental", recording_url=fake_twilio.add_recording(VOICE), name="Bo"
    )

    audio = owner.get(f"/portal/messages/{theirs}/recording")

    assert audio.status_code == 404
    assert fake_twilio.requests == []


def test_the_accounts_credentials_go_to_twilio_only(
    owner: TestClient, clients: Clients, fake_twilio: FakeTwilio
) -> None:
    """A recording URL on any other host (here the fake itself, by its own address) is never
    fetched: Nightdesk sends the account's credentials to Twilio's hosts alone."""
    elsewhere = fake_twilio.add_recording(VOICE).replace(
        "https://api.twilio.com", fake_twilio.base_url
    )
    message = clients.leave_message("harbour-plumbing", recording_url=elsewhere, name="Kim")

    assert owner.get(f"/portal/messages/{message}/recording").status_code == 502
    assert fake_twilio.requests == []
