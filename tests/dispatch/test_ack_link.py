"""The acknowledge link in a notification email: opening it is safe, clicking through takes it."""

from __future__ import annotations

import html
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from app.dispatch.links import Links
from app.messages.models import MessageStatus
from tests.dispatch.conftest import Desk, ref


def link(desk: Desk, message_id: int, contact: str, secret: str | None = None) -> str:
    """The path of the link the email to `contact` carries (signed with `secret` to forge one)."""
    links = Links(desk.settings.public_url, secret or desk.settings.secret_key)
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
    token = URLSafeSerializer(desk.settings.secret_key, salt="ack").dumps(payload)

    for page in (desk.client.get(f"/ack/{token}"), desk.client.post(f"/ack/{token}")):
        assert page.status_code == 404
        assert "This link isn't valid" in html.unescape(page.text)
