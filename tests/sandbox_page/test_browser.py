"""The sandbox page in Chromium, served on loopback as `nightdesk demo` serves it: the developer's
own browser opens it from the home page without signing in, reads a text and an email, and the
email's HTML shows without any of its script running. axe-core finds no serious violations."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email.message import EmailMessage
from smtplib import SMTP

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.settings import Settings
from app.telephony.sandbox.services import Sandboxes
from tests.calls.conftest import Phone
from tests.calls.conftest import phone as phone
from tests.clock import FakeClock
from tests.console.live.test_browser import CHROMIUM, CHROMIUM_ARGS, accessible
from tests.sandbox_page.test_sandbox_page import OFFICE, ON_CALL, leave_a_message_and_dispatch
from tests.support.live import free_socket, serving, url_of

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("demo_clients")]

HOSTILE_HTML = (
    "<p id=words>Hello from the email</p>"
    "<script>document.getElementById('words').textContent = 'RAN'; top.location = '/logout'"
    "</script><img src=x onerror=\"document.body.append('RAN')\">"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium is not installed (scripts/test installs it: apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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


def send_hostile_email(sandboxes: Sandboxes) -> None:
    assert sandboxes.mailbox is not None
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "x@y.test", OFFICE, "An email with a script"
    email.set_content("The plain words")
    email.add_alternative(HOSTILE_HTML, subtype="html")
    with SMTP("127.0.0.1", int(sandboxes.mailbox.url.rsplit(":", 1)[1])) as smtp:
        smtp.send_message(email)


def test_the_developer_reads_what_the_sandbox_sent_from_the_home_page(
    browser: Browser,
    live_url: str,
    phone: Phone,
    app: FastAPI,
    clock: FakeClock,
    sandboxes: Sandboxes,
) -> None:
    leave_a_message_and_dispatch(phone, app, clock)
    assert sandboxes.mailbox is not None
    sandboxes.mailbox.wait_for(1)
    send_hostile_email(sandboxes)
    sandboxes.mailbox.wait_for(2)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page: Page = context.new_page()

    page.goto(f"{live_url}/")
    page.get_by_role("link", name="The sandbox").click()
    expect(page.get_by_role("heading", name="What the sandbox sent")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=ON_CALL).first).to_contain_text("SMS")
    page.get_by_role("link", name="An email with a script").click()

    expect(page.get_by_role("heading", name="An email with a script")).to_be_visible()
    expect(page.get_by_text("The plain words")).to_be_visible()
    frame = page.frame_locator('iframe[title="The email\'s HTML part"]')
    expect(frame.locator("#words")).to_have_text("Hello from the email")
    expect(frame.locator("body")).not_to_contain_text("RAN")
    assert page.url.endswith("/sandbox/emails/2")  # the script did not move the page
    context.close()

    # axe-core is injected as a script, which the email page's policy refuses: bypass it here.
    for path in ("/sandbox", "/sandbox/emails/1", "/sandbox/emails/2"):
        audit = browser.new_context(bypass_csp=True)
        checked = audit.new_page()
        checked.goto(f"{live_url}{path}")
        accessible(checked)
        audit.close()
