"""Tenant isolation, generated from the app's own route table.

Every route under /api/v1 and /portal is tried: with no credentials (the API answers 401, the
portal sends the visitor to sign in), and with another client's API key and user against a
client's things (404, with nothing of that client's in the body; lists hold none of its
messages; nothing changes). Each is then tried with the client's own credentials, so a route
that turned everyone away would fail too. A route with no entry in ROUTES fails the suite: a
new route needs a line below saying how to try it.

Staff-only pages (/sandbox) are tried the same way, on an app with the sandbox running: sent to
sign in without credentials, 403 for a client's user, 200 for staff; 404 without a sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from smtplib import SMTP
from typing import Any, Literal

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from app.accounts.models import Role
from app.db import transaction
from app.flows.pins import hash_pin
from app.main import create_app
from app.messages.reads import Reader, log_reads
from app.settings import Settings
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.services import start_sandboxes
from tests.accounts.conftest import AddPerson, form_token, sign_in
from tests.accounts.conftest import add_person as add_person
from tests.clock import FakeClock
from tests.conftest import PUBLIC_URL
from tests.support.clients import BRIGHT, HARBOUR, HARBOUR_CALLER, Clients, bearer
from tests.support.clients import clients as clients

GUARDED = ("/api/v1", "/portal")
STAFF_ONLY = ("/sandbox",)
PRIVATE = f"""
    privacy:
      pin: "{hash_pin("2468", salt=bytes(16))}"
"""
VOICE = b"ID3 Harbour's caller, recorded"


@dataclass(frozen=True)
class World:
    """Client A (Harbour Plumbing) has a message, on a call, with a recording, and two webhook
    endpoints (one for the API to remove, one for the portal); so has B."""

    message: int
    sid: str
    b_message: int
    endpoint: int
    other_endpoint: int


Kind = Literal["thing", "list", "own"]


@dataclass(frozen=True)
class Try:
    """How to try a route against client A: `thing` names one of A's things (another client
    gets 404); `list` lists the caller's own things; `own` shows or adds to the caller's own
    client. `ok`: the status the route answers its own client with, when not the usual (200;
    303 for a portal form)."""

    kind: Kind
    params: Callable[[World], dict[str, Any]] = lambda world: {}
    json: dict[str, Any] | None = None
    form: dict[str, str | list[str]] = field(default_factory=dict)
    ok: int | None = None


def message(world: World) -> dict[str, Any]:
    return {"message_id": world.message}


def call(world: World) -> dict[str, Any]:
    return {"sid": world.sid}


def endpoint(world: World) -> dict[str, Any]:
    return {"endpoint_id": world.endpoint}


def other_endpoint(world: World) -> dict[str, Any]:
    return {"endpoint_id": world.other_endpoint}


# A public address, so no DNS is needed; "Bright" in it shows Bright's own answer came back.
NEW_HOOK = "https://93.184.216.34/Bright-or-whoever"


ROUTES: dict[tuple[str, str], Try] = {
    ("GET", "/api/v1/messages"): Try("list"),
    ("GET", "/api/v1/messages.csv"): Try("list"),
    ("GET", "/api/v1/messages/{message_id}"): Try("thing", message),
    ("GET", "/api/v1/messages/{message_id}/recording"): Try("thing", message),
    ("GET", "/api/v1/messages/{message_id}/verify"): Try("thing", message),
    ("GET", "/api/v1/messages/{message_id}/reads"): Try("thing", message),
    ("POST", "/api/v1/messages/{message_id}/acknowledge"): Try("thing", message),
    ("POST", "/api/v1/messages/{message_id}/close"): Try(
        "thing", message, json={"note": "done", "called_back": True}
    ),
    ("GET", "/api/v1/calls/{sid}"): Try("thing", call),
    ("GET", "/api/v1/client"): Try("own"),
    ("GET", "/portal"): Try("list"),
    ("GET", "/portal/messages/{message_id}"): Try("thing", message),
    ("POST", "/portal/messages/{message_id}"): Try(
        "thing", message, form={"action": "close", "note": "done"}
    ),
    ("GET", "/portal/messages/{message_id}/recording"): Try("thing", message),
    ("GET", "/api/v1/webhooks"): Try("list"),
    ("POST", "/api/v1/webhooks"): Try("own", json={"url": NEW_HOOK}, ok=201),
    ("GET", "/api/v1/webhooks/{endpoint_id}"): Try("thing", endpoint),
    ("DELETE", "/api/v1/webhooks/{endpoint_id}"): Try("thing", endpoint, ok=204),
    ("GET", "/api/v1/service-levels"): Try("own"),
    ("GET", "/portal/service-levels"): Try("own"),
    ("GET", "/portal/webhooks"): Try("list"),
    ("POST", "/portal/webhooks"): Try("own", form={"url": NEW_HOOK}, ok=200),
    ("POST", "/portal/webhooks/{endpoint_id}/delete"): Try(
        "thing", other_endpoint, form={"confirm": "yes"}
    ),
}

A_SECRETS = (HARBOUR_CALLER, "Harbour", "harbour", "Kim-of-Harbour")


def guarded_routes(app: FastAPI, under: tuple[str, ...] = GUARDED) -> set[tuple[str, str]]:
    """(method, path) of every route under /api/v1 and /portal, as the app routes them."""
    found = set()
    for route in iter_route_contexts(app.routes):
        if route.path and route.methods and route.path.startswith(under):
            found |= {(method, route.path) for method in route.methods - {"HEAD"}}
    return found


@dataclass
class Visitor:
    """Someone knocking: a browser (with its session's form token) or an API key."""

    http: TestClient
    headers: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def attempt(self, method: str, path: str, world: World) -> httpx.Response:
        entry = ROUTES[(method, path)]
        url = path.format(**entry.params(world))
        response: httpx.Response
        if method in ("GET", "DELETE"):
            response = self.http.request(method, url, headers=self.headers, follow_redirects=False)
        elif entry.json is not None:
            response = self.http.post(
                url, json=entry.json, headers=self.headers, follow_redirects=False
            )
        else:
            form = {**entry.form, "csrf_token": self.csrf} if entry.form else None
            response = self.http.post(url, data=form, headers=self.headers, follow_redirects=False)
        return response


@pytest.fixture
def fake_twilio(settings: Settings) -> Iterator[FakeTwilio]:
    with FakeTwilio(settings.twilio_account_sid, settings.twilio_auth_token) as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    return settings.model_copy(update={"twilio_api_base": fake_twilio.base_url})


@pytest.fixture
def world(clients: Clients, fake_twilio: FakeTwilio, load_client: Callable[[str], None]) -> World:
    load_client(HARBOUR + PRIVATE)  # privacy mode: reads of its messages are logged
    load_client(BRIGHT + PRIVATE)
    a = clients.leave_message(
        "harbour-plumbing", recording_url=fake_twilio.add_recording(VOICE), name="Kim-of-Harbour"
    )
    b = clients.leave_message(
        "bright-dental", recording_url=fake_twilio.add_recording(), name="Bo-of-Bright"
    )
    with transaction(clients.sessions) as session:  # A's read log has a read of A's message
        log_reads(session, [a], Reader("Kim-of-Harbour's doctor"), "portal", clients.clock())
    clients.webhook("bright-dental", "https://hooks.bright.test/Bright")
    return World(
        a,
        clients.call_sid(a),
        b,
        clients.webhook("harbour-plumbing", "https://hooks.harbour.test/Harbour-api"),
        clients.webhook("harbour-plumbing", "https://hooks.harbour.test/Harbour-portal"),
    )


def browser(app: FastAPI, email: str | None = None) -> Visitor:
    http = TestClient(app, base_url=PUBLIC_URL)
    if email is None:
        return Visitor(http)
    assert sign_in(http, email).status_code == 303
    return Visitor(http, csrf=form_token(http.get("/portal")))


@pytest.fixture
def visitors(
    app: FastAPI, client: TestClient, clients: Clients, add_person: AddPerson
) -> dict[str, Visitor]:
    add_person("owner@harbour.test", Role.client, client="harbour-plumbing")
    add_person("owner@bright.test", Role.client, client="bright-dental")
    return {
        "nobody": browser(app),
        "A's key": Visitor(client, bearer(clients.api_key("harbour-plumbing"))),
        "B's key": Visitor(client, bearer(clients.api_key("bright-dental"))),
        "A's user": browser(app, "owner@harbour.test"),
        "B's user": browser(app, "owner@bright.test"),
    }


def test_every_route_of_the_api_and_portal_says_how_to_try_it(app: FastAPI) -> None:
    routes = guarded_routes(app)

    assert routes - ROUTES.keys() == set(), "new routes: add them to ROUTES"
    assert ROUTES.keys() - routes == set(), "routes that are gone: remove them from ROUTES"


def test_without_credentials_the_api_says_401_and_the_portal_sends_you_to_sign_in(
    app: FastAPI, world: World, visitors: dict[str, Visitor]
) -> None:
    nobody = visitors["nobody"]
    for method, path in sorted(guarded_routes(app)):
        response = nobody.attempt(method, path, world)
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
        else:
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/login?next=/portal"), (method, path)
        assert not any(secret in response.text for secret in A_SECRETS), (method, path)


def test_another_client_finds_nothing_of_a_clients_and_changes_nothing(
    app: FastAPI,
    world: World,
    visitors: dict[str, Visitor],
    clients: Clients,
    fake_twilio: FakeTwilio,
) -> None:
    for method, path in sorted(guarded_routes(app)):
        kind = ROUTES[(method, path)].kind
        others = ["B's user"] if path.startswith("/portal") else ["B's key", "B's user"]
        for who in others:
            response = visitors[who].attempt(method, path, world)
            leaked = [secret for secret in A_SECRETS if secret in response.text]
            assert leaked == [], (who, method, path)
            if kind == "thing":
                assert response.status_code == 404, (who, method, path)
            else:
                ok = ROUTES[(method, path)].ok
                assert response.status_code == (ok if kind == "own" and ok else 200), (
                    who, method, path,
                )  # fmt: skip
                assert "Bright" in response.text or "Bo-of-Bright" in response.text

    assert clients.message(world.message).status == "new"
    assert clients.webhook_ids("harbour-plumbing") == [world.endpoint, world.other_endpoint]
    assert clients.message(world.message).acknowledged_by is None
    assert fake_twilio.requests == []  # A's recording was never even fetched


def test_the_client_itself_gets_through_every_route(
    app: FastAPI, world: World, visitors: dict[str, Visitor]
) -> None:
    """The control: the checks above would pass for a route that turned everyone away."""
    order = {"GET": 0, "POST": 1, "DELETE": 2}  # look before changing; remove last
    for method, path in sorted(guarded_routes(app), key=lambda route: order[route[0]]):
        who = "A's user" if path.startswith("/portal") else "A's key"
        response = visitors[who].attempt(method, path, world)
        usual = 303 if method == "POST" and path.startswith("/portal") else 200
        expected = ROUTES[(method, path)].ok or usual
        assert response.status_code == expected, (method, path, response.text[:200])
        if method == "GET":
            shown = VOICE in response.content or any(s in response.text for s in A_SECRETS)
            assert shown, (method, path)


# --- staff-only pages: what the development sandbox sent, every client's texts and emails ----

STAFF_PAGES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/sandbox"): {},
    ("GET", "/sandbox/emails/{number}"): {"number": 1},
}


@pytest.fixture
def sandbox_app(settings: Settings, clock: FakeClock) -> Iterator[FastAPI]:
    """The app with its sandbox running, holding an email about one of client A's callers."""
    sandboxes = start_sandboxes(
        settings.model_copy(update={"sandbox": "on"}), lambda _line: None,
        deliver=lambda _url, _form, _headers: None,
    )  # fmt: skip
    application = create_app(sandboxes.settings, clock=clock, sandboxes=sandboxes)
    assert sandboxes.mailbox is not None
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "desk@nightdesk.test", "o@h.test", "Harbour"
    email.set_content("Kim-of-Harbour called")
    with SMTP("127.0.0.1", int(sandboxes.mailbox.url.rsplit(":", 1)[1])) as smtp:
        smtp.send_message(email)
    sandboxes.mailbox.wait_for(1)
    try:
        with TestClient(application, base_url=PUBLIC_URL):  # its lifespan stops the sandbox
            yield application
    finally:
        application.state.engine.dispose()


def test_every_staff_page_says_how_to_try_it(sandbox_app: FastAPI) -> None:
    routes = guarded_routes(sandbox_app, STAFF_ONLY)

    assert routes - STAFF_PAGES.keys() == set(), "new routes: add them to STAFF_PAGES"
    assert STAFF_PAGES.keys() - routes == set(), "routes that are gone: remove them"


def test_staff_pages_are_for_staff_and_only_while_a_sandbox_runs(
    app: FastAPI, sandbox_app: FastAPI, clients: Clients, add_person: AddPerson
) -> None:
    add_person("owner@harbour.test", Role.client, client="harbour-plumbing")
    add_person("pa@nightdesk.test", Role.pa)
    nobody = TestClient(sandbox_app, base_url=PUBLIC_URL)
    a_user, pa = (
        TestClient(sandbox_app, base_url=PUBLIC_URL),
        TestClient(sandbox_app, base_url=PUBLIC_URL),
    )
    assert sign_in(a_user, "owner@harbour.test").status_code == 303
    assert sign_in(pa, "pa@nightdesk.test").status_code == 303
    without_sandbox = TestClient(app, base_url=PUBLIC_URL)

    for method, path in sorted(guarded_routes(sandbox_app, STAFF_ONLY)):
        url = path.format(**STAFF_PAGES[(method, path)])
        response = nobody.request(method, url, follow_redirects=False)
        assert response.status_code == 303, (method, path)
        assert response.headers["location"] == f"/login?next={url}", (method, path)
        response = a_user.request(method, url, follow_redirects=False)
        assert response.status_code == 403, (method, path)
        assert not any(secret in response.text for secret in A_SECRETS), (method, path)
        response = pa.request(method, url, follow_redirects=False)  # the control
        assert response.status_code == 200, (method, path)
        assert "Harbour" in response.text, (method, path)
        assert without_sandbox.request(method, url).status_code == 404, (method, path)
