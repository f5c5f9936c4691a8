"""Is the office open, and is today a holiday? Pure functions of a client's calendar and an instant.

Everything is decided on the client's wall clock (`zoneinfo`), so a call at 01:30 on the night the
clocks change is judged by the local time the caller would read off the kitchen clock.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from app.flows.schema import HolidayCalendar, TimeRange, Weekday

OpeningHours = dict[Weekday, list[TimeRange]]
WEEKDAYS = list(Weekday)


def local_time(at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The instant on the client's wall clock; naive instants are taken as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(zone)


@lru_cache(maxsize=256)
def _public_holidays(country: str, subdivision: str | None, year: int) -> dict[dt.date, str]:
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return dict(calendar.items())


def holiday_name(calendar: HolidayCalendar, day: dt.date) -> str | None:
    """The holiday on that local date ("Christmas Day"), or None on an ordinary day."""
    if day in calendar.closed:
        return "a day the office is closed"
    if calendar.country is None:
        return None
    return _public_holidays(calendar.country, calendar.subdivision, day.year).get(day)


def _seconds(clock: dt.time) -> int:
    return clock.hour * 3600 + clock.minute * 60 + clock.second


def _covers(window: TimeRange, clock: dt.time, *, spill: bool) -> bool:
    """Does the window cover this clock time today (or, with `spill`, as yesterday's overnight)?"""
    start = _seconds(window.start)
    end = _seconds(window.end) or 24 * 3600  # "-24:00" and "-00:00" both mean midnight
    now = _seconds(clock)
    overnight = end <= start
    if spill:
        return overnight and now < end
    if overnight:
        return now >= start
    return start <= now < end


def is_open(
    hours: OpeningHours, calendar: HolidayCalendar, zone: ZoneInfo, at: dt.datetime
) -> bool:
    """True when a person is at the office: inside one of the day's windows, on a day that is not
    a holiday. A window belongs to the day it is listed under, so Thursday's 22:00-02:00 still runs
    into a Friday holiday, and a Thursday holiday cancels it past midnight too."""
    local = local_time(at, zone)
    clock = local.time().replace(tzinfo=None)
    for day, spill in ((local.date(), False), (local.date() - dt.timedelta(days=1), True)):
        windows = hours.get(WEEKDAYS[day.weekday()], [])
        if holiday_name(calendar, day) is None and any(
            _covers(w, clock, spill=spill) for w in windows
        ):
            return True
    return False


def is_holiday(calendar: HolidayCalendar, zone: ZoneInfo, at: dt.datetime) -> bool:
    """True on a public holiday or one of the client's own closed days, by local date."""
    return holiday_name(calendar, local_time(at, zone).date()) is not None


def daily_window_end(
    windows: list[TimeRange], zone: ZoneInfo, at: dt.datetime
) -> dt.datetime | None:
    """If `at` falls inside one of these every-day windows (quiet hours), when that window ends."""
    local = local_time(at, zone)
    clock = local.time().replace(tzinfo=None)
    for window in windows:
        overnight_or_midnight = _seconds(window.end) == 0 or window.end <= window.start
        if _covers(window, clock, spill=True):
            ends_on = local.date()  # the morning part of last night's window
        elif _covers(window, clock, spill=False):
            ends_on = local.date() + dt.timedelta(days=1 if overnight_or_midnight else 0)
        else:
            continue
        return dt.datetime.combine(ends_on, window.end, tzinfo=zone).astimezone(dt.UTC)
    return None
