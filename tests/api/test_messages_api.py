"""/api/v1 from a client's own systems: its messages and calls, a page at a time, and what it
does with them. Keys are made as `nightdesk api-keys create` makes them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.accounts.service import revoke_api_key
from app.clients.flows import FlowStore
from app.db import transaction
from app.dispatch.escalations import FireEscalations
from app.dispatch.models import Delivery, DeliveryKind, Escalation
from app.flows.schema import Urgency
from tests.accounts.conftest import AddPerson, sign_in
from tests.clock import FakeClock
from tests.support.cli import nightdesk
from tests.support.clients import BRIGHT_CALLER, HARBOUR_CALLER, Clients, bearer

HARBOUR, BRIGHT = "harbour-plumbing", "bright-dental"


def ids(response_json: dict[str, object]) -> list[int]:
    items = response_json["items"]
    assert isinstance(items, list)
    return [item["id"] for item in items]


def test_a_client_sees_only_its_own_messages_in_the_api_newest_first(
    client: TestClient, clients: Clients, clock: FakeClock
) -> None:
    first = clients.leave_message(HARBOUR, name="Kim", problem="Burst pipe")
    clients.leave_message(BRIGHT, name="Bo", problem="Toothache")
    clock.advance(minutes=5)
    second = clients.leave_message(HARBOUR, name="Lee", problem="No hot water")

    harbour = client.get("/api/v1/messages", headers=bearer(clients.api_key(HARBOUR)))
    bright = client.get("/api/v1/messages", headers=bearer(clients.api_key(BRIGHT)))

    assert harbour.status_code == 200
    assert ids(harbour.json()) == [second, first]
    assert harbour.json()["next_cursor"] is None
    assert BRIGHT_CALLER not in harbour.text
    assert "Toothache" not in harbour.text
    assert [item["client"] for item in bright.json()["items"]] == [BRIGHT]
    assert HARBOUR_CALLER not in bright.text
    assert "Burst pipe" not in bright.text


def test_another_clients_message_or_call_is_not_found_exactly_like_a_missing_one(
    client: TestClient, clients: Clients
) -> None:
    theirs = clients.leave_message(HARBOUR, name="Kim")
    key = bearer(clients.api_key(BRIGHT))

    other = client.get(f"/api/v1/messages/{theirs}", headers=key)
    missing = client.get("/api/v1/messages/999", headers=key)
    call = client.get(f"/api/v1/calls/{clients.call_sid(theirs)}", headers=key)

    assert other.status_code == missing.status_code == call.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"].replace("999", str(theirs))
    assert HARBOUR_CALLER not in other.text + call.text


def test_pages_follow_the_cursor_without_repeats_even_when_messages_arrive_meanwhile(
    client: TestClient, clients: Clients, clock: FakeClock
) -> None:
    taken = []
    for minute in range(5):
        clock.advance(minutes=minute)
        taken.append(clients.leave_message(HARBOUR, name=f"caller {minute}"))
    taken.append(clients.leave_message(HARBOUR, name="same instant as the last"))
    key = bearer(clients.api_key(HARBOUR))

    seen: list[int] = []
    page = client.get("/api/v1/messages", params={"limit": 4}, headers=key).json()
    seen += ids(page)
    clock.advance(minutes=1)
    clients.leave_message(HARBOUR, name="arrives while paging")
    while page["next_cursor"]:
        params = {"limit": 4, "cursor": page["next_cursor"]}
        page = client.get("/api/v1/messages", params=params, headers=key).json()
        seen += ids(page)

    assert seen == sorted(taken, reverse=True)


def test_messages_can_be_filtered_by_status_urgency_and_when_they_were_taken(
    client: TestClient, clients: Clients, clock: FakeClock
) -> None:
    early = clients.leave_message(HARBOUR, urgency=Urgency.urgent, name="early")
    clock.advance(hours=2)
    late = clients.leave_message(HARBOUR, urgency=Urgency.routine, name="late")
    key = bearer(clients.api_key(HARBOUR))
    client.post(f"/api/v1/messages/{late}/acknowledge", headers=key)

    def found(**params: str) -> list[int]:
        response = client.get("/api/v1/messages", params=params, headers=key)
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert found(urgency="urgent") == [early]
    assert found(status="acknowledged") == [late]
    assert found(since="2026-11-26T03:00:00Z") == [late]
    assert found(until="2026-11-26T03:00:00+00:00") == [early]
    assert found(since="2026-11-26T02:00:00", until="2026-11-26T04:00:01") == [late, early]
    assert client.get("/api/v1/messages?urgency=whenever", headers=key).status_code == 422
    assert client.get("/api/v1/messages?cursor=forged", headers=key).status_code == 400
    beyond = {"since": "9999-12-31T23:59:59-23:59"}  # no UTC instant: refused, not a crash
    assert client.get("/api/v1/messages", params=beyond, headers=key).status_code == 422
    assert client.get("/api/v1/messages/99999999999", headers=key).status_code == 422


def test_acknowledging_through_the_api_stops_escalation_as_an_sms_reply_does(
    app: FastAPI,
    client: TestClient,
    clients: Clients,
    clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:
    acknowledged = clients.leave_message(HARBOUR, name="Kim")
    ignored = clients.leave_message(HARBOUR, name="Lee")
    key = clients.api_key(HARBOUR)

    response = client.post(f"/api/v1/messages/{acknowledged}/acknowledge", headers=bearer(key))

    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"
    assert response.json()["acknowledged_by"] == f"API key {key[:12]}… of Harbour Plumbing"
    clock.advance(minutes=11)  # the policy's next step is due
    FireEscalations(app.state.database, FlowStore()).run(clock())
    with session_factory() as session:
        states = dict(session.execute(select(Escalation.message_id, Escalation.state)).all())
        notified = session.execute(
            select(Delivery.message_id, Delivery.status).where(Delivery.kind == DeliveryKind.notify)
        ).all()
    assert states == {acknowledged: "acknowledged", ignored: "active"}
    assert {status for message, status in notified if message == acknowledged} == {"cancelled"}
    assert len([m for m, _ in notified if m == ignored]) == 3  # step 2 paged everyone
    timeline = client.get(f"/api/v1/messages/{acknowledged}", headers=bearer(key)).json()
    (event,) = [e for e in timeline["timeline"] if e["kind"] == "acknowledged"]
    assert event["detail"]["via"] == "api"
    assert event["detail"]["by"] == f"API key {key[:12]}… of Harbour Plumbing"


def test_the_caller_is_told_someone_has_their_message_and_never_about_an_api_key(
    client: TestClient, clients: Clients, session_factory: sessionmaker[Session]
) -> None:
    message = clients.leave_message(HARBOUR, name="Kim")

    client.post(f"/api/v1/messages/{message}/acknowledge", headers=bearer(clients.api_key(HARBOUR)))

    with session_factory() as session:
        told = session.scalars(
            select(Delivery.body)
            .where(Delivery.kind == DeliveryKind.caller_update)
            .order_by(Delivery.id)
        ).all()
    assert told[-1] == "Someone from Harbour Plumbing has your message and will call you back."


def test_closing_a_message_keeps_the_note_and_the_call_back_on_its_timeline(
    client: TestClient, clients: Clients, clock: FakeClock
) -> None:
    message = clients.leave_message(HARBOUR, name="Kim")
    key = bearer(clients.api_key(HARBOUR))
    clock.advance(minutes=30)

    closed = client.post(
        f"/api/v1/messages/{message}/close",
        json={"note": "Fixed the stopcock", "called_back": True},
        headers=key,
    )
    again = client.post(f"/api/v1/messages/{message}/close", json={"note": "twice"}, headers=key)

    assert closed.status_code == again.status_code == 200
    body = closed.json()
    assert body["status"] == "closed"
    assert body["closed_at"] == body["called_back_at"] == "2026-11-26T02:30:00Z"
    assert body["close_note"] == again.json()["close_note"] == "Fixed the stopcock"
    story = client.get(f"/api/v1/messages/{message}", headers=key).json()
    follow_up = [(e["kind"], e["detail"].get("note")) for e in story["timeline"]][-3:]
    assert follow_up == [
        ("acknowledged", None),
        ("called_back", None),
        ("closed", "Fixed the stopcock"),
    ]
    bad = client.post(f"/api/v1/messages/{message}/close", json={"note": "x" * 2001}, headers=key)
    assert bad.status_code == 422


def test_a_call_shows_its_timeline_and_the_message_taken_on_it(
    client: TestClient, clients: Clients
) -> None:
    message = clients.leave_message(HARBOUR, name="Kim")
    sid = clients.call_sid(message)

    call = client.get(f"/api/v1/calls/{sid}", headers=bearer(clients.api_key(HARBOUR)))

    assert call.status_code == 200
    assert call.json()["message_id"] == message
    assert call.json()["called"] == "+441134960800"
    assert [e["kind"] for e in call.json()["timeline"]] == ["step"]


def test_the_client_reads_its_numbers_contacts_and_who_is_on_call_now(
    client: TestClient, clients: Clients
) -> None:
    harbour = client.get("/api/v1/client", headers=bearer(clients.api_key(HARBOUR))).json()
    bright = client.get("/api/v1/client", headers=bearer(clients.api_key(BRIGHT))).json()

    assert harbour["numbers"] == ["+441134960800"]
    assert [c["name"] for c in harbour["contacts"]] == ["Sam Taylor", "Alex Reed"]
    # Thursday 26 November, 02:00 in London: Sam's week, until Alex takes over on Monday.
    assert harbour["on_call"]["name"] == "Sam Taylor"
    assert harbour["next_handoffs"][0] == {
        "at": "2026-11-30T09:00:00Z",
        "contact": harbour["contacts"][1],
    }
    assert bright["on_call"] is None  # no rotation
    assert "Sam Taylor" not in json.dumps(bright)


def test_the_csv_export_has_a_header_and_no_cell_a_spreadsheet_would_run(
    client: TestClient, clients: Clients
) -> None:
    clients.leave_message(HARBOUR, name='=HYPERLINK("https://evil.test","Click")', problem="@SUM")
    clients.leave_message(BRIGHT, name="Bo")

    export = client.get("/api/v1/messages.csv", headers=bearer(clients.api_key(HARBOUR)))

    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in export.headers["content-disposition"]
    header, row, *rest = export.text.splitlines()
    assert header.startswith("id,created_at,client,caller,urgency,status")
    assert rest == []  # Bright's message is not in Harbour's export
    assert f",'{HARBOUR_CALLER}," in row
    assert 'name: =HYPERLINK(""https://evil.test"",""Click""); problem: @SUM' in row  # mid-cell
    answers_first = client.get(
        "/api/v1/messages.csv", headers=bearer(clients.api_key(BRIGHT))
    ).text.splitlines()[1]
    assert ",name: Bo," in answers_first


def test_the_csv_export_says_who_called_the_caller_back_and_when_as_the_api_does(
    client: TestClient, clients: Clients
) -> None:
    message = clients.leave_message(HARBOUR, name="Kim")
    key = bearer(clients.api_key(HARBOUR))
    closed = client.post(
        f"/api/v1/messages/{message}/close", json={"called_back": True}, headers=key
    ).json()

    [row] = csv.DictReader(io.StringIO(client.get("/api/v1/messages.csv", headers=key).text))

    assert closed["called_back_by"]
    assert (row["called_back_at"], row["called_back_by"]) == (
        dt.datetime.fromisoformat(closed["called_back_at"]).isoformat(),
        closed["called_back_by"],
    )
    assert row["closed_by"] == closed["closed_by"]


def test_the_api_items_are_what_messages_list_json_prints(
    client: TestClient, clients: Clients, flows_dir: Path
) -> None:
    clients.leave_message(HARBOUR, name="Kim", problem="Burst pipe")
    clients.leave_message(HARBOUR, name="Lee")

    api = client.get("/api/v1/messages", headers=bearer(clients.api_key(HARBOUR))).json()
    code, output = nightdesk("messages", "list", "--client", HARBOUR, "--json")

    assert code == 0
    assert api["items"] == json.loads(output)


def test_a_revoked_key_or_none_at_all_is_refused(
    client: TestClient, clients: Clients, session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    key = clients.api_key(HARBOUR)
    assert client.get("/api/v1/messages", headers=bearer(key)).status_code == 200
    with transaction(session_factory) as session:
        revoke_api_key(session, 1, clock())

    revoked = client.get("/api/v1/messages", headers=bearer(key))
    anonymous = client.get("/api/v1/messages")

    assert revoked.status_code == anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"


def test_signed_in_staff_see_every_client_and_a_client_user_only_theirs(
    client: TestClient, clients: Clients, add_person: AddPerson
) -> None:
    harbour = clients.leave_message(HARBOUR, name="Kim")
    bright = clients.leave_message(BRIGHT, name="Bo")
    add_person("sam@nightdesk.test", Role.pa)
    add_person("owner@harbour.test", Role.client, client=HARBOUR)

    sign_in(client, "sam@nightdesk.test")
    staff = client.get("/api/v1/messages").json()
    client.cookies.clear()
    sign_in(client, "owner@harbour.test")
    owner = client.get("/api/v1/messages").json()

    assert sorted(ids(staff)) == [harbour, bright]
    assert ids(owner) == [harbour]
    assert client.get(f"/api/v1/messages/{bright}").status_code == 404
