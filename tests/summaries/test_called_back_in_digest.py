"""The morning summary says whether each caller has been called back, by whom and when."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.summaries.digest import Digest, Entry, html_body, plain_text
from app.summaries.schedule import Period

LONDON = ZoneInfo("Europe/London")
AT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


def entry(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "id": 1, "ref": "1", "at": AT, "caller": "+441134960999", "caller_name": "Jo",
        "callback": "+441134960999", "urgency": "urgent", "outcome": "message",
        "status": "acknowledged", "answers": {}, "transcription": None, "notified": [],
        "acknowledged_by": "Sam Taylor", "acknowledged_at": AT + dt.timedelta(minutes=5),
        "link": "https://nightdesk.test/portal/messages/1",
    }  # fmt: skip
    return Entry(**{**fields, **changes})  # type: ignore[arg-type]


def digest(*entries: Entry) -> Digest:
    period = Period(AT - dt.timedelta(hours=10), AT + dt.timedelta(hours=6))
    return Digest("Acme Plumbing", LONDON, period, entries)


def test_a_caller_called_back_says_by_whom_and_when_on_the_clients_clock() -> None:
    called = entry(called_back_by="Sam Taylor", called_back_at=AT + dt.timedelta(minutes=20))
    text = plain_text(digest(called))
    assert "Taken by Sam Taylor at 02:05 GMT Thu 26 Nov; called back by Sam Taylor at 02:20" in text
    assert "called back by Sam Taylor at 02:20 GMT Thu 26 Nov" in html_body(digest(called))


def test_a_caller_still_waiting_says_so_and_a_call_a_person_answered_owes_none() -> None:
    assert "not called back yet" in plain_text(digest(entry()))
    answered = plain_text(digest(entry(outcome="connected")))
    assert "called back" not in answered
