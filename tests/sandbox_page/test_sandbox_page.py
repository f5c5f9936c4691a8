"""Trying Nightdesk in development: a caller leaves a message, the dispatcher sends what is owed,
and the sandbox page shows the texts and emails that reached nobody."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.accounts.models import Role
from app.clients.flows import FlowStore
from app.dispatch.dispatcher import Dispatcher
from app.dispatch.links import Links
from app.dispatch.senders import make_senders
from app.main import create_app
from app.settings import Settings
from app.telephony.sandbox.caller import Press, Say
from app.telephony.sandbox.services import Sandboxes
from tests.accounts.conftest import AddPerson, sign_in
from tests.accounts.conftest import add_person as add_person
from tests.calls.conftest import ACME, Phone
from tests.calls.conftest import phone as phone
from tests.clock import FakeClock
from tests.conftest import PUBLIC_URL

pytestmark = pytest.mark.usefixtures("demo_clients")

ON_CALL = "+441134960502"  # Acme's engineer on call this Thursday night
OFFICE = "office@acme-plumbing.example"


def leave_a_message_and_dispatch(phone: Phone, app: FastAPI, clock: FakeClock) -> None:
    """A routine message: texted to the engineer at once, emailed to the office an hour on.
    The dispatcher is run by hand, under the test's clock, sending to the app's sandbox."""
    settings: Settings = app.state.settings
    dispatcher = Dispatcher(
        database=app.state.database, flows=FlowStore(), senders=make_senders(settings),
        links=Links(settings.public_url, settings.secret_key, clock), clock=clock,
    )  # fmt: skip
    phone(ACME, Press("2"), Say("Sam Taylor"), Say("07911 123456"), Press("1"),
          Say("The kitchen tap drips all night"))  # fmt: skip
    dispatcher.run_once()
    clock.advance(minutes=61)
    dispatcher.run_once()


def staff_browser(app: FastAPI, add_person: AddPerson, role: Role = Role.pa) -> TestClient:
    """A browser from another machine, signed in as a member of staff."""
    browser = TestClient(app, base_url=PUBLIC_URL)
    add_person(f"{role}@nightdesk.test", role)
    assert sign_in(browser, f"{role}@nightdesk.test").status_code == 303
    return browser


def test_the_page_shows_the_texts_and_the_email_a_message_sent_newest_first(
    phone: Phone,
    app: FastAPI,
    client: TestClient,
    clock: FakeClock,
    sandboxes: Sandboxes,
    add_person: AddPerson,
    printed: list[str],
) -> None:
    leave_a_message_and_dispatch(phone, app, clock)
    assert sandboxes.mailbox is not None
    sandboxes.mailbox.wait_for(1)

    page = staff_browser(app, add_person).get("/sandbox")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert ON_CALL in text
    assert "Sam Taylor (+447911123456)" in text  # the SMS's words
    assert "+447911123456" in text  # the caller's receipt
    (email_link,) = re.findall(r'href="(/sandbox/emails/\d+)"', text)
    assert text.index(OFFICE) < text.index(ON_CALL), "the email, sent last, comes first"
    assert any(line.startswith("[sandbox] email to") for line in printed)  # and it was printed

    email = staff_browser(app, add_person, Role.admin).get(email_link)
    assert email.status_code == 200
    assert OFFICE in email.text
    assert "Sam Taylor" in email.text


def test_an_emails_html_is_shown_in_a_sandboxed_frame_where_no_script_runs(
    app: FastAPI, client: TestClient, sandboxes: Sandboxes, add_person: AddPerson
) -> None:
    from email.message import EmailMessage
    from smtplib import SMTP

    assert sandboxes.mailbox is not None
    hostile = EmailMessage()
    hostile["From"], hostile["To"], hostile["Subject"] = "x@y.test", OFFICE, "<b>Hi</b>"
    hostile.set_content("plain words & more")
    hostile.add_alternative('<p onclick="x()">Hi</p><script>alert("owned")</script>', "html")
    port = int(sandboxes.mailbox.url.rsplit(":", 1)[1])
    with SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(hostile)
    sandboxes.mailbox.wait_for(1)

    page = staff_browser(app, add_person).get("/sandbox/emails/1")

    assert page.status_code == 200
    assert "<script>" not in page.text  # the email's HTML is nowhere in the page as markup
    assert "&lt;b&gt;Hi&lt;/b&gt;" in page.text
    assert "plain words &amp; more" in page.text
    (frame,) = re.findall(r"<iframe[^>]*>", page.text)
    assert " sandbox " in frame
    assert 'srcdoc="&lt;p onclick=&#34;x()&#34;&gt;Hi&lt;/p&gt;&lt;script&gt;' in frame
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy  # and no script-src: no script at all
    assert "script-src" not in policy
    assert staff_browser(app, add_person, Role.admin).get("/sandbox/emails/2").status_code == 404


def test_without_a_sandbox_there_is_no_page_and_no_link(
    settings: Settings, clock: FakeClock
) -> None:
    """Production never has the page: with the sandbox off, it is 404 for everyone."""
    application = create_app(settings, clock=clock)  # the tests' settings: sandbox off
    try:
        with TestClient(application, base_url="http://127.0.0.1:8000",
                        client=("127.0.0.1", 50000)) as local:  # fmt: skip
            assert local.get("/sandbox").status_code == 404
            assert local.get("/sandbox/emails/1").status_code == 404
            assert "/sandbox" not in local.get("/").text
    finally:
        application.state.engine.dispose()


def test_the_home_page_links_to_the_sandbox_when_it_runs(client: TestClient) -> None:
    assert 'href="/sandbox"' in client.get("/").text


def test_on_the_developers_own_machine_the_page_needs_no_sign_in(
    app: FastAPI, client: TestClient
) -> None:
    local = TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000))

    assert local.get("/sandbox").status_code == 200
    assert "What the sandbox sent" in local.get("/sandbox").text


@pytest.mark.parametrize(
    ("base_url", "client_address", "headers"),
    [
        (PUBLIC_URL, ("203.0.113.7", 50000), {}),  # another machine
        ("http://127.0.0.1:8000", ("127.0.0.1", 50000), {"X-Forwarded-For": "203.0.113.9"}),
        ("http://rebound.example:8000", ("127.0.0.1", 50000), {}),  # DNS rebinding
    ],
    ids=["another machine", "through a proxy on this one", "another site's name for it"],
)
def test_anyone_else_is_sent_to_sign_in(
    app: FastAPI,
    client: TestClient,
    base_url: str,
    client_address: tuple[str, int],
    headers: dict[str, str],
) -> None:
    visitor = TestClient(app, base_url=base_url, client=client_address, headers=headers)

    signed_out = visitor.get("/sandbox", follow_redirects=False)

    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?next=/sandbox"
    assert visitor.get("/sandbox/emails/1", follow_redirects=False).status_code == 303


def test_a_clients_user_may_not_see_it_and_staff_may(
    app: FastAPI, client: TestClient, add_person: AddPerson
) -> None:
    """The sandbox holds every client's texts: a client's own user is turned away."""
    visitor = TestClient(app, base_url=PUBLIC_URL)
    add_person("owner@acme.test", Role.client, client="acme-plumbing")
    assert sign_in(visitor, "owner@acme.test").status_code == 303

    assert visitor.get("/sandbox").status_code == 403
    for role in (Role.pa, Role.supervisor, Role.admin):
        assert staff_browser(app, add_person, role).get("/sandbox").status_code == 200, role


def test_in_staging_even_loopback_must_sign_in(
    settings: Settings, clock: FakeClock, sandboxes: Sandboxes
) -> None:
    """NIGHTDESK_SANDBOX=on on a shared server outside development: no exception for loopback."""
    staging = sandboxes.settings.model_copy(update={"environment": "staging"})
    running = Sandboxes(staging, sandboxes.twilio, sandboxes.mailbox)
    application = create_app(staging, clock=clock, sandboxes=running)
    try:
        with TestClient(application, base_url="http://127.0.0.1:8000",
                        client=("127.0.0.1", 50000)) as local:  # fmt: skip
            assert local.get("/sandbox", follow_redirects=False).status_code == 303
    finally:
        application.state.engine.dispose()
