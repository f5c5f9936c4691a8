"""Signing in to the console and the portal: links, passwords, sessions, sign-out, limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import AuditEvent, Role
from app.accounts.service import SESSION_IDLE
from tests.accounts.conftest import PASSWORD, AddPerson, form_token, sign_in
from tests.clock import FakeClock

pytestmark = pytest.mark.usefixtures("demo_clients")


def audit_kinds(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)))


def test_a_pa_signs_in_with_a_password_and_lands_on_the_console(
    client: TestClient, add_person: AddPerson
) -> None:
    add_person("sam@nightdesk.test", Role.pa)

    response = sign_in(client, "Sam@Nightdesk.test")

    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert "nightdesk_session=" in cookie
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie


def test_a_client_user_lands_on_the_portal_and_a_signed_out_visitor_is_sent_to_sign_in(
    client: TestClient, add_person: AddPerson
) -> None:
    add_person("owner@acme.test", Role.client, client="acme-plumbing")

    assert sign_in(client, "owner@acme.test").headers["location"] == "/portal"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong_and_is_audited(
    client: TestClient, add_person: AddPerson, session_factory: sessionmaker[Session]
) -> None:
    add_person("sam@nightdesk.test", Role.pa)

    wrong_password = sign_in(client, "sam@nightdesk.test", "guess")
    no_such_person = sign_in(client, "nobody@nightdesk.test", PASSWORD)

    assert wrong_password.status_code == no_such_person.status_code == 401
    assert "match an account" in wrong_password.text
    assert "nightdesk_session" not in wrong_password.headers.get("set-cookie", "")
    assert audit_kinds(session_factory)[-2:] == ["sign_in_failed", "sign_in_failed"]


def test_after_five_failures_an_account_must_wait_even_with_the_right_password(
    client: TestClient, add_person: AddPerson, clock: FakeClock
) -> None:
    add_person("sam@nightdesk.test", Role.pa)
    for _ in range(5):
        assert sign_in(client, "sam@nightdesk.test", "guess").status_code == 401

    throttled = sign_in(client, "sam@nightdesk.test")
    assert throttled.status_code == 429
    assert "Too many attempts" in throttled.text

    clock.advance(minutes=16)
    assert sign_in(client, "sam@nightdesk.test").status_code == 303


def test_a_one_time_link_signs_in_once_and_only_when_its_button_is_pressed(
    client: TestClient, add_person: AddPerson
) -> None:
    person = add_person("sam@nightdesk.test", Role.pa)
    link = f"/login/link/{person.link_token}"

    page = client.get(link)  # a mail scanner opening the link signs nobody in
    assert page.status_code == 200
    assert "nightdesk_session" not in page.headers.get("set-cookie", "")
    signed_in = client.post(link, data={"csrf_token": form_token(page)}, follow_redirects=False)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/console"

    client.cookies.clear()
    assert client.get(link).status_code == 410
    assert "has been used or has expired" in client.get(link).text


def test_a_link_expires_after_a_day(
    client: TestClient, add_person: AddPerson, clock: FakeClock
) -> None:
    person = add_person("sam@nightdesk.test", Role.pa)
    clock.advance(hours=24, seconds=1)

    assert client.get(f"/login/link/{person.link_token}").status_code == 410


def test_forms_without_their_token_are_refused(client: TestClient, add_person: AddPerson) -> None:
    add_person("sam@nightdesk.test", Role.pa)
    forged = client.post(
        "/login", data={"email": "sam@nightdesk.test", "password": PASSWORD, "csrf_token": "x"}
    )
    assert forged.status_code == 403

    assert sign_in(client, "sam@nightdesk.test").status_code == 303
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403


def test_signing_out_ends_the_session_for_good(
    client: TestClient, add_person: AddPerson, session_factory: sessionmaker[Session]
) -> None:
    add_person("sam@nightdesk.test", Role.pa)
    sign_in(client, "sam@nightdesk.test")
    cookie = client.cookies["nightdesk_session"]
    home = client.get("/")

    signed_out = client.post(
        "/logout", data={"csrf_token": form_token(home)}, follow_redirects=False
    )

    assert signed_out.headers["location"] == "/login"
    client.cookies.set("nightdesk_session", cookie)  # the old cookie, kept by someone
    assert client.get("/login", follow_redirects=False).status_code == 200  # not signed in
    assert audit_kinds(session_factory)[-2:] == ["signed_in", "signed_out"]


def test_a_session_left_idle_ends(
    client: TestClient, add_person: AddPerson, clock: FakeClock
) -> None:
    add_person("sam@nightdesk.test", Role.pa)
    sign_in(client, "sam@nightdesk.test")
    assert client.get("/login", follow_redirects=False).status_code == 303  # signed in

    clock.advance(seconds=SESSION_IDLE.total_seconds() + 1)

    assert client.get("/login", follow_redirects=False).status_code == 200


def test_the_home_page_says_what_this_is_and_where_to_go(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/console"' in page.text
    assert 'href="/portal"' in page.text
    assert 'href="/docs"' in page.text
