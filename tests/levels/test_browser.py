"""The service-level page and the webhooks page in real Chromium: the owner signs in, reads the
charts (drawn on the server, named for a screen reader) and the table, switches to weeks, and
both pages pass axe-core with no serious or critical violations."""

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
from tests.accounts.conftest import PASSWORD, AddPerson
from tests.console.live.test_browser import accessible, screenshot
from tests.console.live.test_browser import browser as browser
from tests.support.clients import Clients
from tests.support.live import free_socket, serving, url_of

pytestmark = pytest.mark.browser


@pytest.fixture
def live_socket() -> Iterator[socket.socket]:
    sock = free_socket()
    yield sock
    sock.close()


@pytest.fixture
def settings(settings: Settings, live_socket: socket.socket) -> Settings:
    return settings.model_copy(update={"public_url": url_of(live_socket)})


@pytest.fixture
def live_url(app: FastAPI, live_socket: socket.socket, client: TestClient) -> Iterator[str]:
    with serving(app, live_socket) as url:
        yield url


@pytest.fixture
def owner_page(
    browser: Browser, live_url: str, clients: Clients, add_person: AddPerson
) -> Iterator[Page]:
    clients.leave_message("harbour-plumbing", Urgency.urgent, name="Kim")
    clients.leave_message("harbour-plumbing", name="Lee")
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


def test_the_owner_reads_the_service_levels_as_charts_and_figures(owner_page: Page) -> None:
    page = owner_page
    page.get_by_role("link", name="Service levels").click()
    expect(page.get_by_role("heading", name="Service levels for Harbour Plumbing")).to_be_visible()
    expect(page.get_by_role("img", name="Messages by urgency")).to_be_visible()
    expect(page.get_by_role("img", name="Time to acknowledge (minutes)")).to_be_visible()
    today = page.get_by_role("row").filter(has_text="Thu 26 Nov")
    expect(today).to_contain_text("2")
    accessible(page)
    screenshot(page, "portal-service-levels")

    page.get_by_role("link", name="Per week").click()
    expect(page.get_by_role("rowheader", name="w/c 23 Nov")).to_be_visible()
    accessible(page)


def test_the_webhooks_page_is_accessible(owner_page: Page) -> None:
    owner_page.get_by_role("link", name="Webhooks").click()
    expect(owner_page.get_by_role("heading", name="Webhooks for Harbour Plumbing")).to_be_visible()
    owner_page.get_by_label("URL (https://, on a public address)").fill("https://10.0.0.9/x")
    owner_page.get_by_role("button", name="Add webhook").click()
    expect(owner_page.get_by_role("alert")).to_contain_text("private")
    accessible(owner_page)
