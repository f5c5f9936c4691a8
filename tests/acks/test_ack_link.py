"""The acknowledge link in a notification email: opening it is safe, clicking through takes it."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from app.dispatch.links import Links
from app.main import create_app
from app.messages.models import MessageStatus
from app.settings import Settings
from tests.clock import FakeClock
from tests.dispatch.conftest import Desk, ref


def link(desk: Desk, message_id: int, contact: str, secret: str | None = None) -> str:
    """The path of the link the email to `contact` carries (signed with `secret` to forge one)."""
    links = Links(desk.settings.public_url, secret or desk.settings.secret_key, desk.clock)
    url = links.ack(message_id, desk.contact(contact).id)
    return url.removeprefix(desk.settings.public_url)


def test_opening_the_link_does_not_acknowledge(desk: Desk) -> None:
    leak = desk.message()

    page = desk.client.get(link(desk, leak, "alex"))

    assert page.status_code == 200
    assert "<form method='post'>" in page.text
    assert "I'll take it" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert desk.look(leak).status == MessageStatus.new


def test_the_pages_form_acknowledges_for_the_emails_contact(desk: Desk) -> None:
    leak = desk.message()

    page = desk.client.post(link(desk, leak, "alex"))

    assert page.status_code == 200
    assert f"Thanks, #{ref(leak)} is yours." in page.text
    message = desk.look(leak)
    assert (message.status, message.acknowledged_by) == (MessageStatus.acknowledged, "Alex Reed")
    assert desk.timeline(leak)[-1] == "acknowledged"


def test_a_message_someone_else_has_says_who(desk: Desk) -> None:
    leak = desk.message()
    desk.client.post(link(desk, leak, "alex"))

    assert f"Alex Reed already has #{ref(leak)}." in desk.client.get(link(desk, leak, "sam")).text
    assert f"Alex Reed already has #{ref(leak)}." in desk.client.post(link(desk, leak, "sam")).text


def test_the_link_works_for_a_week(desk: Desk) -> None:
    leak = desk.message()
    path = link(desk, leak, "alex")

    desk.clock.advance(days=6, hours=23)
    assert "I'll take it" in desk.client.get(path).text

    desk.clock.advance(hours=1, seconds=1)
    for page in (desk.client.get(path), desk.client.post(path)):
        assert page.status_code == 200
        assert f"This link to Acme Plumbing message #{ref(leak)} has expired" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert desk.look(leak).status == MessageStatus.new
    assert "acknowledged" not in desk.timeline(leak)


def test_how_long_links_work_is_the_operators_to_set(
    desk: Desk, settings: Settings, clock: FakeClock
) -> None:
    leak = desk.message()
    app = create_app(settings.model_copy(update={"ack_link_days": 1}), clock)
    with TestClient(app, base_url=settings.public_url) as client:
        url = app.state.links.ack(leak, desk.contact("alex").id)  # as the dispatcher signs it
        path = url.removeprefix(settings.public_url)

        clock.advance(hours=23)
        assert "I'll take it" in client.get(path).text
        clock.advance(hours=2)
        assert "has expired" in client.get(path).text


def test_a_forged_link_is_not_found(desk: Desk) -> None:
    leak = desk.message()
    forged = link(desk, leak, "alex", secret="not-the-secret")

    assert desk.client.get(forged).status_code == 404
    assert desk.client.post(forged).status_code == 404
    assert desk.look(leak).status == MessageStatus.new


@pytest.mark.parametrize(
    "payload",
    [
        "a string",
        [1, 2, 3, 4, 5],
        [1],
        [],
        [2**40, None],
        [1, 2**40],
        [[1], [2]],
        [True, None],
        [1.5, None],
        [0, None],
        [-1, None],
        ["1", None],
        {"message": 1},
        None,
    ],
)
def test_a_genuinely_signed_link_of_the_wrong_shape_is_not_valid(desk: Desk, payload: Any) -> None:
    """Only a leaked key or an older version could sign one; still never a 500."""
    desk.message()
    token = URLSafeTimedSerializer(desk.settings.secret_key, salt="ack").dumps(payload)

    for page in (desk.client.get(f"/ack/{token}"), desk.client.post(f"/ack/{token}")):
        assert page.status_code == 404
        assert "This link isn't valid" in html.unescape(page.text)
