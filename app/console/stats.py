"""Supervisors' figures for today: how long callers waited for a PA, and how many gave up,
for each client, counted in the client's own day. Pure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Wait:
    """One caller's wait in a client's queue."""

    client: str
    zone: ZoneInfo
    enqueued_at: dt.datetime
    status: str  # waiting, offered, answered, abandoned, timed_out
    answered_at: dt.datetime | None


@dataclass(frozen=True)
class ClientDay:
    client: str
    queued: int
    answered: int
    abandoned: int
    timed_out: int
    p50_seconds: float | None  # time to answer, of the callers a PA answered
    p90_seconds: float | None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile (p in 0..100): a value that really occurred; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def is_today(at: dt.datetime, zone: ZoneInfo, now: dt.datetime) -> bool:
    return at.astimezone(zone).date() == now.astimezone(zone).date()


def today_by_client(waits: Iterable[Wait], now: dt.datetime) -> list[ClientDay]:
    """Each client's queue today (in its own time zone), by client name."""
    by_client: dict[str, list[Wait]] = {}
    for wait in waits:
        if is_today(wait.enqueued_at, wait.zone, now):
            by_client.setdefault(wait.client, []).append(wait)
    days = []
    for client, found in sorted(by_client.items()):
        to_answer = [
            (w.answered_at - w.enqueued_at).total_seconds()
            for w in found
            if w.status == "answered" and w.answered_at is not None
        ]
        days.append(
            ClientDay(
                client=client, queued=len(found), answered=len(to_answer),
                abandoned=sum(w.status == "abandoned" for w in found),
                timed_out=sum(w.status == "timed_out" for w in found),
                p50_seconds=percentile(to_answer, 50), p90_seconds=percentile(to_answer, 90),
            )
        )  # fmt: skip
    return days
