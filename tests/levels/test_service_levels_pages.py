"""A client checks its own service levels: in the API, on a portal page with charts drawn on the
server, and (for whoever runs Nightdesk) in /metrics, with or without client names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.accounts.models import Role
from app.accounts.service import Principal
from app.clients.flows import FlowStore
from app.db import transaction
from app.flows.schema import Urgency
from app.inbox.service import record_call_back
from app.levels.metrics import SERVICE_LEVELS, pooled_by_label
from app.observability import configure_metrics
from tests.accounts.conftest import AddPerson, sign_in
from tests.clock import FakeClock
from tests.support.clients import Clients, bearer


@pytest.fixture
def night(clients: Clients, clock: FakeClock) -> Clients:
    """Harbour: two urgent messages, one called back after 20 minutes; Bright: one routine."""
    first = clients.leave_message("harbour-plumbing", Urgency.urgent, name="Kim")
    clients.leave_message("harbour-plumbing", Urgency.urgent, name="Lee")
    clients.leave_message("bright-dental", name="Bo")
    clock.advance(minutes=20)
    harbour = clients.message(first).client_id
    owner = Principal(user_id=None, name="Hana", role=Role.client, client_id=harbour)
    with transaction(clients.sessions) as session:
        record_call_back(session, FlowStore(), owner, first, note=None, via="api", now=clock())
    return clients


def test_the_api_gives_a_clients_own_levels_per_day_in_its_own_calendar(
    client: TestClient, night: Clients
) -> None:
    response = client.get(
        "/api/v1/service-levels", headers=bearer(night.api_key("harbour-plumbing"))
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["client"], body["timezone"], body["by"]) == (
        "harbour-plumbing", "Europe/London", "day",
    )  # fmt: skip
    assert len(body["periods"]) == 14
    today = body["periods"][-1]
    assert today["start"] == "2026-11-26"
    assert today["calls_taken"] == 2
    assert today["messages"] == {"emergency": 0, "urgent": 2, "routine": 0}
    assert today["time_to_call_back"] == {"count": 1, "p50_seconds": 1200, "p90_seconds": 1200}
    assert today["time_to_acknowledge"]["count"] == 1  # calling back acknowledged it

    bright = client.get(
        "/api/v1/service-levels?by=week&count=4", headers=bearer(night.api_key("bright-dental"))
    ).json()
    assert len(bright["periods"]) == 4
    assert bright["periods"][-1]["start"] == "2026-11-23"  # New York's Monday
    assert bright["periods"][-1]["messages"]["routine"] == 1  # its own, none of Harbour's
    assert bright["periods"][-1]["calls_taken"] == 1


def test_the_portal_page_draws_its_charts_on_the_server_and_shows_the_figures(
    client: TestClient, night: Clients, add_person: AddPerson
) -> None:
    add_person("owner@harbour.test", Role.client, client="harbour-plumbing", name="Hana")
    sign_in(client, "owner@harbour.test")
    page = client.get("/portal/service-levels")
    assert page.status_code == 200
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg"') == 5
    assert "<script" not in page.text
    assert "20 min / 20 min (1)" in page.text  # called back within 20 minutes
    weekly = client.get("/portal/service-levels?by=week")
    assert "w/c 23 Nov" in weekly.text


@pytest.fixture
def no_client_names() -> Iterator[None]:
    yield
    configure_metrics(client_labels=True)  # as every other test's app has it


def test_metrics_give_todays_levels_per_client_or_pooled_under_all(
    client: TestClient, night: Clients, no_client_names: None
) -> None:
    text = client.get("/metrics").text
    assert 'nightdesk_service_calls{client="harbour-plumbing",window="day"} 2.0' in text
    assert 'nightdesk_service_calls{client="bright-dental",window="week"} 1.0' in text
    assert (
        'nightdesk_service_seconds{client="harbour-plumbing",measure="call_back",quantile="0.9",'
        'window="day"} 1200.0'
    ) in text

    configure_metrics(client_labels=False)  # as NIGHTDESK_METRICS_CLIENT_LABELS=false does
    SERVICE_LEVELS.forget()  # read again now, not a minute later
    text = client.get("/metrics").text
    assert 'nightdesk_service_calls{client="all",window="day"} 3.0' in text
    assert "harbour-plumbing" not in text.split("nightdesk_service_")[1]


def test_metrics_read_every_clients_levels_in_four_statements_however_many_clients(
    night: Clients, clock: FakeClock
) -> None:
    """/metrics reads them in a unit of work of the service's own (on SQLite, on the loop every
    webhook waits for): with a statement a client, a scrape held every caller up for 0.7 s
    with 435 clients. (Counted on the test's own engine: the app's dispatcher runs beside.)"""
    selects: list[str] = []

    def seen(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            selects.append(sql)

    with transaction(night.sessions) as session:
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            pooled = pooled_by_label(session, clock())
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert len(selects) == 4, "the clients; their calls, messages and PA queue entries"
    assert (pooled[("harbour-plumbing", "day")].calls, pooled[("bright-dental", "day")].calls) == (
        2, 1,
    )  # fmt: skip
