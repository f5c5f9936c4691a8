"""Who is on call at an instant: a pure function of a rotation, its overrides and the client's zone.

Shifts are counted in local calendar days from the rotation's first day, and hand over at the
local hand-off time, so a 09:00 hand-off stays at 09:00 on the wall clock across DST changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from app.flows.hours import local_time
from app.flows.schema import Rotation, Shift


@dataclass(frozen=True)
class Handoff:
    at: dt.datetime
    contact: str


def _shift_days(rotation: Rotation) -> int:
    if rotation.shift is Shift.daily:
        return 1
    if rotation.shift is Shift.weekly:
        return 7
    return int(rotation.shift)


def _aware(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Override times written without an offset are the client's local time."""
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _scheduled(rotation: Rotation, local: dt.datetime) -> str:
    shift_day = local.date() if local.time() >= rotation.handoff else local.date() - dt.timedelta(1)
    index = (shift_day - rotation.starts).days // _shift_days(rotation)
    return rotation.members[index % len(rotation.members)]


def who_is_on_call(rotation: Rotation, zone: ZoneInfo, at: dt.datetime) -> str:
    """The contact id on call at `at`: the latest-starting override covering it, else the rota."""
    local = local_time(at, zone)  # also makes a naive `at` comparable with the overrides
    covering = [
        o for o in rotation.overrides if _aware(o.start, zone) <= local < _aware(o.end, zone)
    ]
    if covering:
        return max(covering, key=lambda o: _aware(o.start, zone)).contact
    return _scheduled(rotation, local)


def next_handoffs(
    rotation: Rotation, zone: ZoneInfo, at: dt.datetime, count: int = 3
) -> list[Handoff]:
    """The next `count` changes of who is on call after `at`, rota and overrides together."""
    local = local_time(at, zone)
    candidates: set[dt.datetime] = set()
    day = local.date()
    for offset in range(0, 8 * _shift_days(rotation) * (count + 1)):
        wall = dt.datetime.combine(day + dt.timedelta(offset), rotation.handoff, tzinfo=zone)
        candidates.add(wall.astimezone(dt.UTC))
    for o in rotation.overrides:
        candidates.update(_aware(t, zone).astimezone(dt.UTC) for t in (o.start, o.end))
    changes: list[Handoff] = []
    current = who_is_on_call(rotation, zone, local)
    for instant in sorted(c for c in candidates if c > local):
        person = who_is_on_call(rotation, zone, instant)
        if person != current:
            changes.append(Handoff(instant, person))
            current = person
            if len(changes) == count:
                break
    return changes
