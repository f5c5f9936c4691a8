"""/portal/webhooks from the owner's side: add a URL and copy its secret (shown once), see what
their system refused, remove it; a private address is refused with the reason."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import transaction
from app.webhooks.models import WebhookDelivery, WebhookStatus
from tests.accounts.conftest import form_token
from tests.support.clients import Clients

HOOK = "https://93.184.216.34/harbour-hook"


def test_the_owner_adds_a_webhook_copies_its_secret_once_and_removes_it(
    owner: TestClient,
) -> None:
    page = owner.get("/portal/webhooks")
    assert page.status_code == 200
    assert "No webhooks yet." in page.text
    token = form_token(page)

    added = owner.post(
        "/portal/webhooks",
        data={"url": HOOK, "events": ["message.called_back"], "csrf_token": token},
    )
    assert added.status_code == 200
    assert "shown only this once" in added.text
    secret = added.text.split('<code id="secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")

    listed = owner.get("/portal/webhooks")
    assert HOOK in listed.text
    assert "message.called_back" in listed.text
    assert secret not in listed.text

    endpoint_id = listed.text.split('action="/portal/webhooks/')[1].split("/")[0]
    removed = owner.post(
        f"/portal/webhooks/{endpoint_id}/delete", data={"csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert removed.status_code == 303
    assert "No webhooks yet." in owner.get("/portal/webhooks").text


def test_a_private_address_is_refused_with_the_reason(owner: TestClient) -> None:
    token = form_token(owner.get("/portal/webhooks"))
    refused = owner.post(
        "/portal/webhooks", data={"url": "https://192.168.0.10/hook", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "private, link-local or reserved" in refused.text
    assert "No webhooks yet." in refused.text


def test_the_owner_sees_the_deliveries_their_system_refused(
    owner: TestClient, clients: Clients
) -> None:
    clients.webhook("harbour-plumbing", HOOK)
    clients.leave_message("harbour-plumbing", name="Kim")
    with transaction(clients.sessions) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        delivery.status, delivery.attempts, delivery.error = WebhookStatus.pending, 2, "HTTP 503"
    page = owner.get("/portal/webhooks")
    assert "message.taken" in page.text
    assert "HTTP 503" in page.text
    assert "tried again" in page.text
