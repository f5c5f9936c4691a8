"""/api/v1/webhooks from a client's own systems: register a URL (its secret shown once), list,
look at what was refused, remove; a URL into a private network is refused with the reason."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import transaction
from app.settings import Settings
from app.webhooks.models import WebhookDelivery, WebhookStatus
from tests.clock import FakeClock
from tests.support.clients import Clients, bearer

PUBLIC_HOOK = "https://93.184.216.34/nightdesk"  # an address: these machines have no DNS


def test_a_client_registers_a_url_sees_it_listed_without_its_secret_and_removes_it(
    client: TestClient, clients: Clients
) -> None:
    key = bearer(clients.api_key("harbour-plumbing"))
    body = {"url": PUBLIC_HOOK, "events": ["message.closed", "message.taken"]}
    added = client.post("/api/v1/webhooks", json=body, headers=key)
    assert added.status_code == 201, added.text
    created = added.json()
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["message.closed", "message.taken"]
    assert created["state"] == "active"

    listed = client.get("/api/v1/webhooks", headers=key).json()
    assert [e["url"] for e in listed] == [PUBLIC_HOOK]
    assert "whsec_" not in client.get("/api/v1/webhooks", headers=key).text
    assert "secret" not in client.get(f"/api/v1/webhooks/{created['id']}", headers=key).json()

    assert client.delete(f"/api/v1/webhooks/{created['id']}", headers=key).status_code == 204
    assert client.get(f"/api/v1/webhooks/{created['id']}", headers=key).status_code == 404
    assert client.get("/api/v1/webhooks", headers=key).json() == []


def test_a_url_into_a_private_network_or_not_https_is_refused_with_the_reason(
    client: TestClient, clients: Clients
) -> None:
    key = bearer(clients.api_key("harbour-plumbing"))
    refused = {
        "https://10.0.0.5/hook": "private, link-local or reserved",
        "https://169.254.169.254/latest/meta-data": "private, link-local or reserved",
        "https://[::ffff:192.168.1.1]/": "private, link-local or reserved",
        "http://93.184.216.34/hook": "use https://",
        "https://name.that.does.not.resolve.invalid/": "does not resolve",
    }
    for url, reason in refused.items():
        response = client.post("/api/v1/webhooks", json={"url": url}, headers=key)
        assert response.status_code == 422, url
        assert reason in response.json()["detail"], (url, response.json())
    unknown = client.post(
        "/api/v1/webhooks", json={"url": PUBLIC_HOOK, "events": ["message.eaten"]}, headers=key
    )
    assert unknown.status_code == 422
    assert client.get("/api/v1/webhooks", headers=key).json() == []


def test_loopback_receivers_are_for_development_and_the_sandbox_only(settings: Settings) -> None:
    assert settings.webhooks_may_reach_this_machine  # the tests' own receivers
    production = settings.model_copy(update={"environment": "production", "sandbox": "off"})
    assert not production.webhooks_may_reach_this_machine
    sandbox = production.model_copy(update={"sandbox": "on"})
    assert sandbox.webhooks_may_reach_this_machine


def test_the_deliveries_a_clients_system_refused_are_shown_with_the_error(
    client: TestClient, clients: Clients, clock: FakeClock
) -> None:
    key = bearer(clients.api_key("harbour-plumbing"))
    endpoint = clients.webhook("harbour-plumbing", PUBLIC_HOOK)
    clients.leave_message("harbour-plumbing", name="Kim")  # owes message.taken to it
    with transaction(clients.sessions) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        delivery.status, delivery.attempts = WebhookStatus.failed, 8
        delivery.response_status, delivery.error = 500, "HTTP 500"

    detail = client.get(f"/api/v1/webhooks/{endpoint}", headers=key).json()
    (failure,) = detail["recent_failures"]
    assert failure["event_type"] == "message.taken"
    assert (failure["status"], failure["attempts"], failure["error"]) == ("failed", 8, "HTTP 500")
    assert failure["next_try"] is None
    assert detail["failed"] == 1
