"""Pages and filters as plain values: cursors round-trip and refuse forgeries, days are local."""

from __future__ import annotations

import base64
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.inbox.filters import BadCursorError, Cursor, local_days

LONDON = ZoneInfo("Europe/London")


def test_a_cursor_comes_back_as_it_went_out_to_the_microsecond() -> None:
    cursor = Cursor(dt.datetime(2026, 11, 26, 2, 0, 0, 123456, tzinfo=dt.UTC), 42)

    token = cursor.encode()

    assert Cursor.decode(token) == cursor
    assert "2026" not in token  # opaque: callers hand it back, they don't build one


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26T02:00:00|42",  # a time without an offset: never one we hand out
        "2026|x",
        "9999-12-31T23:59:59-23:59|1",  # UTC cannot express it
        "2026-11-26T02:00:00+00:00|0",
        "2026-11-26T02:00:00+00:00|99999999999999999999",  # no such id, nor column for it
    ],
)
def test_a_cursor_we_did_not_hand_out_is_refused(text: str) -> None:
    token = base64.urlsafe_b64encode(text.encode()).decode()
    with pytest.raises(BadCursorError):
        Cursor.decode(token)


@pytest.mark.parametrize("token", ["", "not a cursor", "!!!"])
def test_a_cursor_that_is_not_even_base64_is_refused(token: str) -> None:
    with pytest.raises(BadCursorError):
        Cursor.decode(token)


def test_days_are_the_clients_own_calendar_days_across_the_clocks_going_back() -> None:
    # 25 October 2026: British Summer Time ends, the day has 25 hours.
    since, until = local_days(dt.date(2026, 10, 25), dt.date(2026, 10, 25), LONDON)

    assert since == dt.datetime(2026, 10, 24, 23, 0, tzinfo=dt.UTC)
    assert until == dt.datetime(2026, 10, 26, 0, 0, tzinfo=dt.UTC)


def test_an_open_ended_range_has_no_bound_on_that_side() -> None:
    assert local_days(None, None, LONDON) == (None, None)
    since, until = local_days(dt.date(2026, 11, 26), None, ZoneInfo("America/New_York"))
    assert (since, until) == (dt.datetime(2026, 11, 26, 5, 0, tzinfo=dt.UTC), None)


def test_days_at_the_end_of_the_calendar_are_out_of_range_not_a_crash() -> None:
    with pytest.raises(ValueError, match="out of range"):
        local_days(None, dt.date(9999, 12, 31), LONDON)
    with pytest.raises(ValueError, match="out of range"):
        local_days(dt.date(1, 1, 1), None, ZoneInfo("Asia/Tokyo"))
