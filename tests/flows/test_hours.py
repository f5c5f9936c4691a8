"""Opening hours and holidays, judged on the client's own wall clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.flows.hours import OpeningHours, holiday_name, is_holiday, is_open
from app.flows.schema import HolidayCalendar, TimeRange, Weekday

LONDON = ZoneInfo("Europe/London")
ENGLAND = HolidayCalendar(country="GB", subdivision="ENG")
PLUMBER: OpeningHours = {
    **{day: [TimeRange.model_validate("08:00-17:30")] for day in list(Weekday)[:5]},
    Weekday.saturday: [TimeRange.model_validate("09:00-12:00")],
}
# A late-night chemist: open into the small hours on Friday and Saturday nights.
LATE: OpeningHours = {
    Weekday.friday: [TimeRange.model_validate("18:00-02:00")],
    Weekday.saturday: [TimeRange.model_validate("18:00-02:00")],
}


def london(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    """A wall-clock time in London, as an aware instant."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def test_christmas_day_is_closed_even_on_a_weekday() -> None:
    christmas = london(2026, 12, 25, 10, 0)  # a Friday
    assert not is_open(PLUMBER, ENGLAND, LONDON, christmas)
    assert holiday_name(ENGLAND, christmas.date()) == "Christmas Day"


def test_a_bank_holiday_monday_is_closed() -> None:
    summer_bank_holiday = london(2026, 8, 31, 10, 0)
    assert is_holiday(ENGLAND, LONDON, summer_bank_holiday)
    assert not is_open(PLUMBER, ENGLAND, LONDON, summer_bank_holiday)
    assert is_open(PLUMBER, ENGLAND, LONDON, london(2026, 9, 1, 10, 0))  # the Tuesday after


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (london(2026, 3, 7, 8, 59), False),
        (london(2026, 3, 7, 9, 0), True),
        (london(2026, 3, 7, 11, 59), True),
        (london(2026, 3, 7, 12, 0), False),  # a window's end is when it closes
        (london(2026, 3, 8, 10, 0), False),  # Sunday
    ],
)
def test_saturday_morning_is_open_and_only_the_morning(at: dt.datetime, expected: bool) -> None:
    assert is_open(PLUMBER, ENGLAND, LONDON, at) is expected


def test_an_overnight_window_spills_into_the_next_morning() -> None:
    assert is_open(LATE, ENGLAND, LONDON, london(2026, 3, 14, 1, 30))  # Friday's, on Saturday
    assert not is_open(LATE, ENGLAND, LONDON, london(2026, 3, 14, 2, 0))
    assert is_open(LATE, ENGLAND, LONDON, london(2026, 3, 15, 1, 0))  # Saturday's, on Sunday
    assert not is_open(LATE, ENGLAND, LONDON, london(2026, 3, 16, 1, 0))  # Sunday has none


def test_an_overnight_window_belongs_to_the_day_it_starts() -> None:
    new_year = HolidayCalendar(closed=[dt.date(2027, 1, 1)])  # a Friday
    # Thursday 31 December has no window; Friday's starts on the holiday, so never opens...
    assert not is_open(LATE, new_year, LONDON, london(2027, 1, 1, 20, 0))
    assert not is_open(LATE, new_year, LONDON, london(2027, 1, 2, 1, 0))
    # ...while an ordinary Friday's window runs on past midnight into a closed Saturday.
    saturday_off = HolidayCalendar(closed=[dt.date(2026, 3, 14)])
    assert is_open(LATE, saturday_off, LONDON, london(2026, 3, 14, 1, 0))


def test_the_night_the_clocks_go_forward_is_judged_on_the_local_clock() -> None:
    # 29 March 2026: at 01:00 GMT the clocks jump to 02:00 BST, so 01:30 UTC reads 02:30.
    saturday_night: OpeningHours = {Weekday.saturday: [TimeRange.model_validate("22:00-02:00")]}
    assert is_open(saturday_night, ENGLAND, LONDON, utc(2026, 3, 29, 0, 30))  # 00:30 GMT
    assert not is_open(saturday_night, ENGLAND, LONDON, utc(2026, 3, 29, 1, 30))  # 02:30 BST


def test_the_night_the_clocks_go_back_is_judged_on_the_local_clock() -> None:
    # 25 October 2026: at 02:00 BST the clocks fall back to 01:00 GMT, so 01:00-02:00 happens twice.
    saturday_night: OpeningHours = {Weekday.saturday: [TimeRange.model_validate("22:00-01:30")]}
    assert is_open(saturday_night, ENGLAND, LONDON, utc(2026, 10, 24, 23, 15))  # 00:15 BST
    assert not is_open(saturday_night, ENGLAND, LONDON, utc(2026, 10, 25, 0, 45))  # 01:45 BST
    assert is_open(saturday_night, ENGLAND, LONDON, utc(2026, 10, 25, 1, 15))  # 01:15 GMT
    assert not is_open(saturday_night, ENGLAND, LONDON, utc(2026, 10, 25, 1, 45))  # 01:45 GMT


def test_weekday_hours_keep_to_the_wall_clock_after_the_change() -> None:
    assert not is_open(PLUMBER, ENGLAND, LONDON, utc(2026, 3, 30, 6, 30))  # 07:30 BST
    assert is_open(PLUMBER, ENGLAND, LONDON, utc(2026, 3, 30, 7, 0))  # 08:00 BST


def test_a_clients_own_closed_day_is_a_holiday() -> None:
    with_closed_day = ENGLAND.model_copy(update={"closed": [dt.date(2026, 12, 24)]})
    christmas_eve = london(2026, 12, 24, 10, 0)  # a Thursday, not a bank holiday
    assert is_open(PLUMBER, ENGLAND, LONDON, christmas_eve)
    assert not is_open(PLUMBER, with_closed_day, LONDON, christmas_eve)
    assert holiday_name(with_closed_day, christmas_eve.date()) == "a day the office is closed"


def test_a_naive_instant_is_taken_as_utc() -> None:
    assert is_open(PLUMBER, ENGLAND, LONDON, dt.datetime(2026, 7, 1, 7, 30))  # 08:30 BST
