"""People who sign in: added as `nightdesk users add` adds them, signed in through the pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.accounts.service import add_user, sign_in_link
from app.db import transaction
from tests.clock import FakeClock

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Person:
    email: str
    link_token: str


AddPerson = Callable[..., Person]


@pytest.fixture
def add_person(session_factory: sessionmaker[Session], clock: FakeClock) -> AddPerson:
    """An account, with a password and a fresh one-time sign-in link."""

    def add(email: str, role: Role, client: str | None = None, name: str | None = None) -> Person:
        with transaction(session_factory) as session:
            user = add_user(
                session, email, role, clock(), client_slug=client, name=name, password=PASSWORD
            )
            return Person(user.email, sign_in_link(session, user, clock()))

    return add


def form_token(page: httpx.Response) -> str:
    """The CSRF token a page's form carries, as a browser would submit it."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    """Fill in the sign-in form as a person would."""
    page = client.get("/login")
    response: httpx.Response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": form_token(page)},
        follow_redirects=False,
    )
    return response
