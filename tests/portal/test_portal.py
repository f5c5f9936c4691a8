"""/portal from a client business's side: its own messages, found, read and followed up."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from app.accounts.models import Role
from app.flows.schema import Urgency
from tests.accounts.conftest import AddPerson, form_token, sign_in
from tests.clock import FakeClock
from tests.support.clients import BRIGHT_CALLER, HARBOUR_CALLER, Clients
from tests.support.pages import Page, press

HARBOUR, BRIGHT = "harbour-plumbing", "bright-dental"


def listed(page_text: str) -> list[int]:
    """The messages a list page links to, top to bottom."""
    links = [a.attrs["href"] for a in Page(page_text).links]
    return [int(href.rsplit("/", 1)[1]) for href in links if href.startswith("/portal/messages/")]


def test_a_client_user_sees_only_their_own_messages_newest_first(
    owner: TestClient, clients: Clients, clock: FakeClock
) -> None:
    clients.leave_message(HARBOUR, name="Kim", problem="Burst pipe")
    clients.leave_message(BRIGHT, name="Bo", problem="Toothache")
    clock.advance(minutes=10)
    clients.leave_message(HARBOUR, name="Lee", problem="No hot water")

    page = owner.get("/portal")

    assert page.status_code == 200
    assert "Messages for Harbour Plumbing" in page.text
    assert listed(page.text) == [3, 1]
    assert page.text.index("No hot water") < page.text.index("Burst pipe")
    assert "Toothache" not in page.text
    assert BRIGHT_CALLER not in page.text


def test_the_list_filters_by_the_clients_own_days_urgency_and_calls_back_still_owed(
    owner: TestClient, clients: Clients, clock: FakeClock
) -> None:
    clock.set(dt.datetime(2026, 11, 25, 23, 30, tzinfo=dt.UTC))  # Wednesday 23:30 in London
    wednesday = clients.leave_message(HARBOUR, Urgency.urgent, name="Wed")
    clock.set(dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC))  # Thursday 02:00 in London
    thursday = clients.leave_message(HARBOUR, name="Thu")
    called_back = clients.leave_message(HARBOUR, name="Thu, called back")
    page = owner.get(f"/portal/messages/{called_back}")
    press(owner, page, "Record call back", {"Call back note": "Sorted on the phone"})

    def shown(**query: str) -> list[int]:
        page = owner.get("/portal", params=query)
        assert page.status_code == 200
        return listed(page.text)

    assert shown() == [called_back, thursday, wednesday]
    assert shown(**{"from": "2026-11-26"}) == [called_back, thursday]
    assert shown(to="2026-11-25") == [wednesday]
    assert shown(urgency="urgent") == [wednesday]
    assert shown(status="acknowledged") == [called_back]
    assert shown(waiting="1") == [thursday, wednesday]
    typo = owner.get("/portal", params={"from": "26/11/2026", "urgency": ""})
    assert "is not a date, so it was ignored" in typo.text
    assert len(listed(typo.text)) == 3
    beyond = owner.get("/portal", params={"to": "9999-12-31"})
    assert "out of range, so they were ignored" in beyond.text


def test_older_messages_are_a_link_away_with_the_filters_kept(
    owner: TestClient, clients: Clients, clock: FakeClock
) -> None:
    taken = []
    for _ in range(55):
        clock.advance(minutes=1)
        taken.append(clients.leave_message(HARBOUR, Urgency.urgent, name="Kim"))
    clients.leave_message(HARBOUR, Urgency.routine, name="not urgent")

    first = owner.get("/portal", params={"urgency": "urgent"})
    older = [a for a in Page(first.text).links if a.text == "Older messages"]
    second = owner.get(older[0].attrs["href"])

    shown = listed(first.text) + listed(second.text)
    assert shown == sorted(taken, reverse=True)
    assert "Older messages" not in second.text


def test_a_message_shows_what_the_caller_said_and_everything_that_happened_since(
    owner: TestClient, clients: Clients
) -> None:
    message = clients.leave_message(
        HARBOUR, Urgency.urgent, transcription="Water coming through the ceiling",
        name="Kim Lee", callback_number="07700 900111",
    )  # fmt: skip

    page = owner.get(f"/portal/messages/{message}")

    assert page.status_code == 200
    assert f"Message #{message} from {HARBOUR_CALLER}" in page.text
    assert "Kim Lee" in page.text
    assert "callback number" in page.text
    assert "Water coming through the ceiling" in page.text
    assert "Thu 26 Nov 2026, 02:00" in page.text  # London time
    for happened in ("step", "taken", "queued"):
        assert f"<td>{happened}</td>" in page.text


def test_acknowledging_calling_back_and_closing_go_on_the_timeline_with_who_did_it(
    owner: TestClient, clients: Clients, clock: FakeClock
) -> None:
    message = clients.leave_message(HARBOUR, name="Kim")
    page = owner.get(f"/portal/messages/{message}")

    acknowledged = press(owner, page, "Acknowledge")
    clock.advance(minutes=20)
    called = press(owner, acknowledged, "Record call back", {"Call back note": "No answer"})
    clock.advance(minutes=20)
    closed = press(
        owner, called, "Close",
        {"Closing note": "Plumber booked for 8am", "We called the caller back": True},
    )  # fmt: skip

    assert "nobody else will be paged about it" in acknowledged.text
    assert "Your call back is recorded." in called.text
    assert "by Hana Owner, Thu 26 Nov 2026, 02:20" in called.text
    assert "The message is closed." in closed.text
    row = clients.message(message)
    assert (row.status, row.acknowledged_by, row.closed_by) == (
        "closed",
        "Hana Owner",
        "Hana Owner",
    )
    assert row.called_back_by == "Hana Owner"
    assert row.called_back_at is not None
    assert row.called_back_at.replace(tzinfo=dt.UTC) == dt.datetime(
        2026, 11, 26, 2, 20, tzinfo=dt.UTC
    )
    assert row.close_note == "Plumber booked for 8am"
    timeline = closed.text[closed.text.index("Timeline") :]
    for what, note in (("acknowledged", ""), ("called back", "No answer"),
                       ("closed", "Plumber booked for 8am")):  # fmt: skip
        assert f"<td>{what}</td><td>Hana Owner (portal)</td>" in timeline
        assert note in timeline
    assert [b.text for b in Page(closed.text).controls if b.tag == "button"] == ["Sign out"]


def test_a_form_posted_without_the_sessions_token_changes_nothing(
    owner: TestClient, clients: Clients
) -> None:
    message = clients.leave_message(HARBOUR, name="Kim")

    forged = owner.post(f"/portal/messages/{message}", data={"action": "close"})
    stale = owner.post(
        f"/portal/messages/{message}", data={"action": "close", "csrf_token": "from another site"}
    )

    assert forged.status_code == stale.status_code == 403
    assert clients.message(message).status == "new"


def test_another_clients_message_is_not_found_and_shows_nothing_of_theirs(
    owner: TestClient, clients: Clients
) -> None:
    theirs = clients.leave_message(BRIGHT, name="Bo", problem="Toothache")
    token = form_token(owner.get("/portal"))

    page = owner.get(f"/portal/messages/{theirs}")
    closing = owner.post(
        f"/portal/messages/{theirs}", data={"action": "close", "csrf_token": token}
    )

    assert page.status_code == closing.status_code == 404
    assert "no such message among yours" in page.text
    assert "Toothache" not in page.text + closing.text
    assert clients.message(theirs).status == "new"


def test_every_field_has_a_visible_label_and_every_action_a_name(
    owner: TestClient, clients: Clients
) -> None:
    message = clients.leave_message(HARBOUR, recording_url="https://api.twilio.com/x/RE1", name="K")

    for path in ("/portal", f"/portal/messages/{message}", "/portal/messages/999"):
        page = owner.get(path)
        assert Page(page.text).unnamed() == [], path


@pytest.mark.parametrize("role", [Role.pa, Role.admin])
def test_staff_have_the_console_not_the_portal(
    client: TestClient, clients: Clients, add_person: AddPerson, role: Role
) -> None:
    add_person("sam@nightdesk.test", role)
    sign_in(client, "sam@nightdesk.test")

    assert client.get("/portal").status_code == 403
