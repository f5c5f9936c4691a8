"""Who may reach each console page, checked for every route the app serves under /console: a
route missing from the table below fails the first test, so no new page escapes the others."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.accounts.models import Role
from tests.console.conftest import AddPa

STAFF, SUPERVISORS = "staff", "supervisors"
ACCESS = {
    ("GET", "/console"): STAFF,
    ("POST", "/console/presence"): STAFF,
    ("POST", "/console/queue/{entry_id}/take"): STAFF,
    ("GET", "/console/calls/{entry_id}"): STAFF,
    ("POST", "/console/calls/{entry_id}/message"): STAFF,
    ("POST", "/console/calls/{entry_id}/hang-up"): STAFF,
    ("POST", "/console/calls/{entry_id}/wrap-up"): STAFF,
    ("POST", "/console/calls/{entry_id}/transfer"): STAFF,
    ("POST", "/console/calls/{entry_id}/hand-over"): STAFF,
    ("POST", "/console/calls/{entry_id}/voicemail"): STAFF,
    ("POST", "/console/calls/{entry_id}/monitor"): SUPERVISORS,
    ("GET", "/console/events"): STAFF,
    ("GET", "/console/voice-sdk.js"): STAFF,
    ("GET", "/console/voice-token"): STAFF,
    ("POST", "/console/calls/{entry_id}/sandbox-connect"): STAFF,
    ("POST", "/console/calls/{entry_id}/give-back"): STAFF,
    ("GET", "/console/supervisor"): SUPERVISORS,
}


def console_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves under /console, through included routers too."""
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path and route.path.startswith("/console")
        for method in route.methods or ()
        if method != "HEAD"
    }


def answers(client: TestClient, routes: list[tuple[str, str]]) -> dict[str, str]:
    """What each route answers this visitor: a status, with where a redirect goes."""
    found = {}
    for method, template in routes:
        path = template.replace("{entry_id}", "1")
        response = client.request(method, path, follow_redirects=False)
        where = response.headers.get("location", "").split("?")[0]
        found[f"{method} {template}"] = f"{response.status_code} {where}".strip()
    return found


def test_every_console_route_is_in_the_access_table(app: FastAPI) -> None:
    assert console_routes(app) == set(ACCESS), "add the new route to ACCESS, with who may see it"


def test_the_signed_out_are_sent_to_sign_in_from_every_console_route(
    console_client: TestClient,
) -> None:
    found = answers(console_client, sorted(ACCESS))
    assert found == {route: "303 /login" for route in found}
    next_page = console_client.get("/console/calls/1", follow_redirects=False)
    assert next_page.headers["location"] == "/login?next=/console/calls/1"


def test_a_client_businesss_user_reaches_no_console_route(add_pa: AddPa) -> None:
    owner = add_pa(
        "owner@harbour-law.example", role=Role.client, client="harbour-law", phone=None,
        available=False,
    )  # fmt: skip
    found = answers(owner.browser, sorted(ACCESS))
    assert found == {route: "403" for route in found}


def test_a_pa_reaches_no_supervisors_page(add_pa: AddPa) -> None:
    pa = add_pa(available=False)
    found = answers(pa.browser, sorted(r for r, who in ACCESS.items() if who == SUPERVISORS))
    assert found == {route: "403" for route in found}
