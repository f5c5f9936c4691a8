"""/metrics as an operator's Prometheus sees it: behind a bearer token when one is set, and
without client names when they must stay private."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.observability import REGISTRY, client_label, configure_metrics
from app.settings import Settings
from app.telephony.sandbox.caller import HangUp, Press, SimulatedCaller
from tests.calls.conftest import ACME, CALLER
from tests.clock import FakeClock

TOKEN = "Zq9Xw7Vb-kP2mLx3TnR8cYb4KdHs6JfUe1AgNi5oBt0"


@pytest.fixture
def serve(settings: Settings, clock: FakeClock) -> Iterator[Any]:
    """Start the app with some settings changed; yields a function that returns its client."""
    clients: list[TestClient] = []

    def start(**changed: Any) -> TestClient:
        app = create_app(settings.model_copy(update=changed), clock)
        client = TestClient(app, base_url=settings.public_url)
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
    configure_metrics(client_labels=True)  # as every other test's app has it


def test_without_a_token_metrics_are_open(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-the-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}", "Bearer "],
)
def test_with_a_token_set_anything_but_that_bearer_token_gets_401(
    serve: Any, authorization: str | None
) -> None:
    client = serve(metrics_token=TOKEN)
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "nightdesk_" not in response.text


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_with_a_token_set_prometheus_reads_metrics_with_it(serve: Any, scheme: str) -> None:
    client = serve(metrics_token=TOKEN)

    response = client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})

    assert response.status_code == 200
    assert "nightdesk_webhook_seconds" in response.text
    assert client.get("/healthz").status_code == 200  # the probes stay open


def test_client_labels_can_be_turned_off(serve: Any) -> None:
    serve(metrics_client_labels=False)
    assert client_label("acme-plumbing") == "all"
    serve(metrics_client_labels=True)
    assert client_label("acme-plumbing") == "acme-plumbing"


@pytest.mark.usefixtures("demo_clients")
def test_with_client_labels_off_calls_are_counted_under_all(serve: Any, settings: Settings) -> None:
    def counted(client: str) -> float:
        return REGISTRY.get_sample_value("nightdesk_calls_total", {"client": client}) or 0

    before = counted("all"), counted("acme-plumbing")
    client = serve(metrics_client_labels=False)
    SimulatedCaller(
        client,
        public_url=settings.public_url,
        auth_token=settings.twilio_auth_token,
        account_sid=settings.twilio_account_sid,
        from_number=CALLER,
        to_number=ACME,
        script=[Press("2"), HangUp()],
    ).run()

    assert (counted("all"), counted("acme-plumbing")) == (before[0] + 1, before[1])
