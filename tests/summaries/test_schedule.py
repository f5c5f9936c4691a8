"""When the morning summary is due and what it covers, on the client's own clock: plain values,
an injected "now", clients in different zones and the nights the clocks change."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.flows.schema import HolidayCalendar, TimeRange, Weekday
from app.summaries.schedule import Period, Schedule, due_summary, summary_now

LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
WEEKDAYS_8_TO_5 = {
    day: [TimeRange.model_validate("08:00-17:30")]
    for day in (
        Weekday.monday,
        Weekday.tuesday,
        Weekday.wednesday,
        Weekday.thursday,
        Weekday.friday,
    )
}
OPENING_HOURS = {**WEEKDAYS_8_TO_5, Weekday.saturday: [TimeRange.model_validate("09:00-12:00")]}


def at(zone: ZoneInfo, text: str) -> dt.datetime:
    """A wall-clock time in `zone` ("2026-11-26 08:00"), as the aware UTC instant it is."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(dt.UTC)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def daily(zone: ZoneInfo, time: str) -> Schedule:
    return Schedule(zone, dt.time.fromisoformat(time), {}, HolidayCalendar())


def test_a_summary_at_eight_is_due_at_eight_on_the_clients_clock_and_not_a_minute_before() -> None:
    schedule = daily(LONDON, "08:00")
    last = at(LONDON, "2026-11-25 08:00")
    assert due_summary(schedule, last, at(LONDON, "2026-11-26 07:59")) is None
    assert due_summary(schedule, last, at(LONDON, "2026-11-26 08:00")) == Period(
        last, at(LONDON, "2026-11-26 08:00")
    )


def test_once_sent_the_same_summary_is_not_due_again() -> None:
    schedule = daily(LONDON, "08:00")
    sent_up_to = at(LONDON, "2026-11-26 08:00")
    assert due_summary(schedule, sent_up_to, at(LONDON, "2026-11-26 08:00")) is None
    assert due_summary(schedule, sent_up_to, at(LONDON, "2026-11-26 23:59")) is None


def test_clients_in_london_and_new_york_get_theirs_at_their_own_eight_oclock() -> None:
    london, new_york = daily(LONDON, "08:00"), daily(NEW_YORK, "08:00")
    last = utc("2026-11-25 00:00")
    eight_in_london = utc("2026-11-26 08:00")  # GMT is UTC in winter
    assert due_summary(london, last, eight_in_london) is not None
    assert due_summary(new_york, last, eight_in_london) == Period(last, utc("2026-11-25 13:00"))
    assert due_summary(new_york, utc("2026-11-25 13:00"), eight_in_london) is None
    assert due_summary(new_york, utc("2026-11-25 13:00"), utc("2026-11-26 13:00")) is not None


def test_by_default_the_summary_comes_at_opening_time_and_a_closed_sunday_has_none() -> None:
    schedule = Schedule(LONDON, None, OPENING_HOURS, HolidayCalendar())
    friday = at(LONDON, "2026-11-27 08:00")
    saturday = due_summary(schedule, friday, at(LONDON, "2026-11-28 10:00"))
    assert saturday == Period(friday, at(LONDON, "2026-11-28 09:00"))
    assert due_summary(schedule, saturday.end, at(LONDON, "2026-11-29 23:00")) is None  # Sunday
    monday = due_summary(schedule, saturday.end, at(LONDON, "2026-11-30 08:00"))
    assert monday == Period(at(LONDON, "2026-11-28 09:00"), at(LONDON, "2026-11-30 08:00"))


def test_a_bank_holiday_has_no_summary_and_the_next_covers_the_long_weekend() -> None:
    schedule = Schedule(
        LONDON, None, OPENING_HOURS, HolidayCalendar(country="GB", subdivision="ENG")
    )
    saturday = at(LONDON, "2026-08-29 09:00")
    bank_holiday_monday = at(LONDON, "2026-08-31 12:00")
    assert due_summary(schedule, saturday, bank_holiday_monday) is None
    tuesday = due_summary(schedule, saturday, at(LONDON, "2026-09-01 08:00"))
    assert tuesday == Period(saturday, at(LONDON, "2026-09-01 08:00"))


def test_the_night_london_puts_its_clocks_back_is_a_25_hour_night() -> None:
    schedule = daily(LONDON, "08:00")
    saturday = at(LONDON, "2026-10-24 08:00")  # 07:00 UTC, British Summer Time
    sunday = due_summary(schedule, saturday, at(LONDON, "2026-10-25 08:00"))
    assert sunday == Period(utc("2026-10-24 07:00"), utc("2026-10-25 08:00"))  # 08:00 GMT
    assert sunday.end - sunday.start == dt.timedelta(hours=25)


def test_a_summary_at_half_past_one_goes_once_although_london_lives_that_hour_twice() -> None:
    schedule = daily(LONDON, "01:30")
    saturday = at(LONDON, "2026-10-24 01:30")
    first_half_past_one = utc("2026-10-25 00:30")  # 01:30 BST
    second_half_past_one = utc("2026-10-25 01:30")  # 01:30 GMT, an hour later
    sent = due_summary(schedule, saturday, first_half_past_one)
    assert sent == Period(saturday, first_half_past_one)
    assert due_summary(schedule, sent.end, second_half_past_one) is None


def test_new_york_springs_forward_a_23_hour_night_and_a_time_that_never_happens_moves_on() -> None:
    at_eight = daily(NEW_YORK, "08:00")
    saturday = at(NEW_YORK, "2026-03-07 08:00")  # 13:00 UTC, EST
    sunday = due_summary(at_eight, saturday, utc("2026-03-08 12:00"))  # 08:00 EDT
    assert sunday == Period(saturday, utc("2026-03-08 12:00"))
    assert sunday.end - sunday.start == dt.timedelta(hours=23)

    at_half_past_two = daily(NEW_YORK, "02:30")  # 02:30 does not exist on 8 March
    saturday = at(NEW_YORK, "2026-03-07 02:30")
    assert due_summary(at_half_past_two, saturday, utc("2026-03-08 07:29")) is None
    sunday = due_summary(at_half_past_two, saturday, utc("2026-03-08 07:30"))  # 03:30 EDT
    assert sunday == Period(saturday, utc("2026-03-08 07:30"))


def test_new_york_falls_back_and_the_summary_at_half_past_one_still_goes_once() -> None:
    schedule = daily(NEW_YORK, "01:30")
    saturday = at(NEW_YORK, "2026-10-31 01:30")
    first = due_summary(schedule, saturday, utc("2026-11-01 05:30"))  # 01:30 EDT
    assert first == Period(saturday, utc("2026-11-01 05:30"))
    assert due_summary(schedule, first.end, utc("2026-11-01 06:30")) is None  # 01:30 EST
    at_eight = daily(NEW_YORK, "08:00")
    sunday = due_summary(at_eight, at(NEW_YORK, "2026-10-31 08:00"), utc("2026-11-01 13:00"))
    assert sunday is not None
    assert sunday.end - sunday.start == dt.timedelta(hours=25)


def test_after_days_without_a_dispatcher_one_summary_covers_everything_since_the_last() -> None:
    schedule = daily(LONDON, "08:00")
    last = at(LONDON, "2026-11-20 08:00")
    assert due_summary(schedule, last, at(LONDON, "2026-11-26 15:00")) == Period(
        last, at(LONDON, "2026-11-26 08:00")
    )


def test_a_clients_first_summary_comes_at_its_next_summary_time_and_covers_the_day_before() -> None:
    schedule = Schedule(LONDON, None, OPENING_HOURS, HolidayCalendar())
    assert due_summary(schedule, None, at(LONDON, "2026-11-28 15:00")) is None, "set up at 3pm"
    monday = due_summary(schedule, None, at(LONDON, "2026-11-30 08:05"))
    assert monday == Period(at(LONDON, "2026-11-28 09:00"), at(LONDON, "2026-11-30 08:00"))


def test_a_summary_on_demand_covers_up_to_now_and_a_second_one_at_once_covers_nothing() -> None:
    schedule = daily(LONDON, "08:00")
    last = at(LONDON, "2026-11-26 08:00")
    now = at(LONDON, "2026-11-26 15:00")
    assert summary_now(schedule, last, now) == Period(last, now)
    assert summary_now(schedule, now, now) is None
    first = summary_now(schedule, None, now)
    assert first == Period(at(LONDON, "2026-11-25 08:00"), now)
