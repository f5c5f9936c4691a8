"""The portal in real Chromium, as a client's owner uses it in the morning: sign in, filter to
what was urgent, open a message, play its recording (fetched through Nightdesk), record the call
back, and see it on the message's timeline; every page passes axe-core."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect

from app.accounts.models import Role
from app.flows.schema import Urgency
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.accounts.conftest import PASSWORD, AddPerson
from tests.console.live.test_browser import accessible, screenshot
from tests.console.live.test_browser import browser as browser
from tests.support.clients import Clients
from tests.support.live import free_socket, serving, url_of

pytestmark = pytest.mark.browser

# A second of MPEG-1 Layer III silence (38 frames of 128 kbit/s at 44.1 kHz, 417 bytes each):
# a recording Chromium can decode and play, as Twilio's .mp3 recordings are.
SILENCE = (b"\xff\xfb\x90\x64" + bytes(413)) * 38


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(settings.twilio_account_sid, settings.twilio_auth_token) as fake:
        yield fake


@pytest.fixture
def live_socket() -> Iterator[socket.socket]:
    sock = free_socket()
    yield sock
    sock.close()


@pytest.fixture
def settings(settings: Settings, live_socket: socket.socket, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(
        update={"public_url": url_of(live_socket), "twilio_api_base": fake_twilio.base_url}
    )


@pytest.fixture
def live_url(app: FastAPI, live_socket: socket.socket, client: TestClient) -> Iterator[str]:
    with serving(app, live_socket) as url:
        yield url


@pytest.fixture
def owner_page(
    browser: Browser, live_url: str, clients: Clients, add_person: AddPerson
) -> Iterator[Page]:
    add_person("owner@harbour.test", Role.client, client="harbour-plumbing", name="Hana")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_url}/login")
    page.get_by_label("Email").fill("owner@harbour.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Messages for Harbour Plumbing")).to_be_visible()
    yield page
    context.close()


def test_the_owner_finds_the_urgent_message_plays_it_and_records_the_call_back(
    owner_page: Page, clients: Clients, fake_twilio: FakeTwilio, live_url: str
) -> None:
    recording = fake_twilio.add_recording(SILENCE)
    clients.leave_message("harbour-plumbing", Urgency.urgent, recording_url=recording, name="Kim")
    clients.leave_message("harbour-plumbing", name="Lee")
    page = owner_page
    page.reload()
    accessible(page)

    page.get_by_label("Urgency").select_option("urgent")
    page.get_by_role("button", name="Show messages").click()
    rows = page.get_by_role("row").filter(has_text="urgent")
    expect(rows).to_have_count(1)
    expect(page.get_by_role("row").filter(has_text="Lee")).to_have_count(0)
    rows.get_by_role("link").click()

    expect(page.get_by_role("heading", name="Recording (12 s)")).to_be_visible()
    played = page.evaluate(
        """async () => {
            const audio = document.querySelector("audio");
            await audio.play();
            await new Promise((done) => audio.addEventListener("ended", done, {once: true}));
            return {src: audio.currentSrc, seconds: audio.duration};
        }"""
    )
    assert played["src"].startswith(f"{live_url}/portal/messages/"), "played through Nightdesk"
    assert 0.9 < played["seconds"] < 1.1
    (fetched,) = fake_twilio.requests
    assert fetched.status == 200, "Nightdesk fetched it with the account's credentials"
    accessible(page)

    page.get_by_label("Call back note").fill("Spoke to Kim: there at 8")
    page.get_by_role("button", name="Record call back").click()

    expect(page.get_by_role("status")).to_be_visible()
    called_back = page.locator("dt", has_text="Called back").locator(
        "xpath=following-sibling::dd[1]"
    )
    expect(called_back).to_contain_text("by Hana")
    timeline = page.get_by_role("table").last
    expect(timeline).to_contain_text("Spoke to Kim: there at 8")
    accessible(page)
    screenshot(page, "portal-message")
