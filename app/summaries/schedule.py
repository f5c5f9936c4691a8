"""When a client's morning summary is due, and which stretch of time it covers. Pure.

A summary goes out at a *slot*: the flow's `summary.at` on every day, or, without one, the
client's first opening time on each day it opens (not on holidays). Slots are read off the
client's wall clock (`zoneinfo`), so 08:00 stays 08:00 across a change of the clocks and the
night in between is 23 or 25 hours long. Each summary covers from where the last one ended up
to its slot, so consecutive summaries never overlap and nothing falls between them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from app.flows.hours import WEEKDAYS, OpeningHours, holiday_name, local_time
from app.flows.schema import Flow, HolidayCalendar

# How far back to look for a slot: a shut fortnight over Christmas still finds one.
LOOKBACK_DAYS = 31
# A client's first summary goes at its first summary time after it asked for one: a time
# further back than this was before it asked, and is not caught up on.
FIRST_WITHIN = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Schedule:
    """What decides a client's summary times: its zone, a fixed time or its opening hours."""

    zone: ZoneInfo
    at: dt.time | None
    hours: OpeningHours
    holidays: HolidayCalendar

    @classmethod
    def of(cls, flow: Flow) -> Schedule | None:
        """The flow's summary schedule; None when the client wants no summary."""
        if flow.summary is None:
            return None
        return cls(flow.zone, flow.summary.at, flow.hours, flow.holidays)


@dataclass(frozen=True)
class Period:
    """The messages a summary covers: created at or after `start` and before `end` (UTC)."""

    start: dt.datetime
    end: dt.datetime


def slot_on(schedule: Schedule, day: dt.date) -> dt.datetime | None:
    """The summary time on one local day (aware UTC), or None when none is sent that day.

    A wall-clock time that happens twice (the hour the clocks go back) is its first
    occurrence, so the summary goes once; one that never happens (the hour they go forward)
    is moved on by the gap, 02:30 becoming 03:30: `zoneinfo`'s reading with fold=0.
    https://docs.python.org/3/library/datetime.html#datetime.datetime.fold
    """
    at = schedule.at
    if at is None:
        if holiday_name(schedule.holidays, day) is not None:
            return None
        windows = schedule.hours.get(WEEKDAYS[day.weekday()], [])
        if not windows:
            return None
        at = min(window.start for window in windows)
    return dt.datetime.combine(day, at, tzinfo=schedule.zone).astimezone(dt.UTC)


def latest_slot(schedule: Schedule, now: dt.datetime) -> dt.datetime | None:
    """The most recent summary time at or before `now`."""
    today = local_time(now, schedule.zone).date()
    for back in range(LOOKBACK_DAYS + 1):
        slot = slot_on(schedule, today - dt.timedelta(days=back))
        if slot is not None and slot <= now:
            return slot
    return None


def slot_before(schedule: Schedule, slot: dt.datetime) -> dt.datetime | None:
    """The summary time before this one."""
    day = local_time(slot, schedule.zone).date()
    for back in range(1, LOOKBACK_DAYS + 1):
        earlier = slot_on(schedule, day - dt.timedelta(days=back))
        if earlier is not None and earlier < slot:
            return earlier
    return None


def due_summary(
    schedule: Schedule, last_period_end: dt.datetime | None, now: dt.datetime
) -> Period | None:
    """The summary that should have gone by `now` and hasn't, or None.

    After missed slots (the service was down) it is one summary up to the latest slot, not
    one per slot. A client's first summary (`last_period_end` None) is due within an hour of
    its time, and starts at the slot before.
    """
    slot = latest_slot(schedule, now)
    if slot is None:
        return None
    if last_period_end is not None:
        return Period(last_period_end, slot) if last_period_end < slot else None
    if now - slot > FIRST_WITHIN:
        return None
    return Period(_first_start(schedule, slot), slot)


def summary_now(
    schedule: Schedule, last_period_end: dt.datetime | None, now: dt.datetime
) -> Period | None:
    """The summary asked for on demand: from the last one's end up to `now`, due or not."""
    if last_period_end is None:
        slot = latest_slot(schedule, now)
        start = _first_start(schedule, slot) if slot else now - dt.timedelta(days=1)
    else:
        start = last_period_end
    return Period(start, now) if start < now else None


def _first_start(schedule: Schedule, slot: dt.datetime) -> dt.datetime:
    return slot_before(schedule, slot) or slot - dt.timedelta(days=1)
