"""`nightdesk users add --phone`: the PA's phone the console rings; and `nightdesk call`
against a sandbox that lets the caller wait in the queue."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import User
from tests.support.cli import nightdesk

pytestmark = pytest.mark.usefixtures("flows_dir")


def test_a_pas_phone_is_kept_in_e164(session_factory: sessionmaker[Session]) -> None:
    code, output = nightdesk(
        "users", "add", "sam@nightdesk.test", "--role", "pa", "--phone", "+1 500 555 0006"
    )

    assert code == 0, output
    with session_factory() as session:
        phone = session.scalar(select(User.phone).where(User.email == "sam@nightdesk.test"))
    assert phone == "+15005550006"


def test_a_phone_that_is_not_a_number_is_refused() -> None:
    code, output = nightdesk("users", "add", "sam@nightdesk.test", "--role", "pa", "--phone", "12")

    assert code == 1
    assert "not a phone number" in output or "not a possible phone number" in output
