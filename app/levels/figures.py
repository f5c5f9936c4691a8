"""Service levels from plain rows, per local day or week. Pure.

- calls taken: calls to the client's numbers that started in the period;
- abandoned: of those, the ones the caller hung up on before leaving a message or reaching a
  person (an ended call with no message, or a message cut short: outcome `partial`);
- messages by urgency; time to acknowledge and to call back, from the message's taking, for
  messages nobody answered live (a person who answered the call took it there and then);
- PA time to answer, for callers a PA answered in the console's queue.
Times are p50 and p90 by nearest rank: values that really occurred. A week starts on Monday.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from app.console.stats import percentile

By = Literal["day", "week"]
URGENCIES = ("emergency", "urgent", "routine")
LIVE = "connected"  # a message taken by a person on the call: acknowledged as it was taken


@dataclass(frozen=True)
class CallRow:
    started_at: dt.datetime
    ended: bool  # the call is over (not still ringing or in progress)
    outcome: str | None  # its message's outcome; None: no message


@dataclass(frozen=True)
class MessageRow:
    created_at: dt.datetime
    urgency: str
    outcome: str
    acknowledged_at: dt.datetime | None
    called_back_at: dt.datetime | None


@dataclass(frozen=True)
class AnswerRow:
    """A caller in the PA queue; `answered_at` None: no PA answered them."""

    enqueued_at: dt.datetime
    answered_at: dt.datetime | None


@dataclass(frozen=True)
class Timing:
    count: int
    p50_seconds: float | None
    p90_seconds: float | None

    @staticmethod
    def of(seconds: Sequence[float]) -> Timing:
        return Timing(len(seconds), percentile(seconds, 50), percentile(seconds, 90))


@dataclass
class Samples:
    """What happened in one period: counts, and the raw durations behind each percentile (so
    periods, or clients, can be pooled before the percentiles are taken)."""

    calls: int = 0
    abandoned: int = 0
    messages: Counter[str] = field(default_factory=Counter)
    to_acknowledge: list[float] = field(default_factory=list)
    to_call_back: list[float] = field(default_factory=list)
    to_answer: list[float] = field(default_factory=list)

    def pooled(self, other: Samples) -> Samples:
        return Samples(
            self.calls + other.calls,
            self.abandoned + other.abandoned,
            self.messages + other.messages,
            self.to_acknowledge + other.to_acknowledge,
            self.to_call_back + other.to_call_back,
            self.to_answer + other.to_answer,
        )


@dataclass(frozen=True)
class Period:
    """One day or week of a client's service levels (`start`: its first local day)."""

    start: dt.date
    calls: int
    abandoned: int
    messages: dict[str, int]
    acknowledge: Timing
    call_back: Timing
    pa_answer: Timing

    @staticmethod
    def of(start: dt.date, samples: Samples) -> Period:
        messages = {u: samples.messages.get(u, 0) for u in URGENCIES}
        messages |= {u: n for u, n in samples.messages.items() if u not in messages}
        return Period(
            start, samples.calls, samples.abandoned, messages,
            Timing.of(samples.to_acknowledge), Timing.of(samples.to_call_back),
            Timing.of(samples.to_answer),
        )  # fmt: skip


def period_start(at: dt.datetime, zone: ZoneInfo, by: By) -> dt.date:
    """The first local day of the day or week `at` falls in."""
    day = at.astimezone(zone).date()
    return day if by == "day" else day - dt.timedelta(days=day.weekday())


def period_starts(now: dt.datetime, zone: ZoneInfo, by: By, count: int) -> list[dt.date]:
    """The last `count` periods up to and including the current one, oldest first."""
    step = dt.timedelta(days=1 if by == "day" else 7)
    current = period_start(now, zone, by)
    return [current - step * back for back in range(count - 1, -1, -1)]


def since(now: dt.datetime, zone: ZoneInfo, by: By, count: int) -> dt.datetime:
    """The instant the oldest of those periods begins: what to read rows from."""
    first = period_starts(now, zone, by, count)[0]
    return dt.datetime.combine(first, dt.time(0), zone).astimezone(dt.UTC)


def samples_by_period(
    calls: Iterable[CallRow],
    messages: Iterable[MessageRow],
    answers: Iterable[AnswerRow],
    zone: ZoneInfo,
    now: dt.datetime,
    by: By,
    count: int,
) -> dict[dt.date, Samples]:
    """Each of the last `count` periods' samples (empty periods included), oldest first."""
    found = {start: Samples() for start in period_starts(now, zone, by, count)}

    def bucket(at: dt.datetime) -> Samples | None:
        return found.get(period_start(at, zone, by))

    for call in calls:
        if (s := bucket(call.started_at)) is not None:
            s.calls += 1
            s.abandoned += call.ended and (call.outcome is None or call.outcome == "partial")
    for message in messages:
        if (s := bucket(message.created_at)) is None:
            continue
        s.messages[message.urgency] += 1
        if message.outcome == LIVE:
            continue
        if message.acknowledged_at is not None:
            s.to_acknowledge.append(_seconds(message.created_at, message.acknowledged_at))
        if message.called_back_at is not None:
            s.to_call_back.append(_seconds(message.created_at, message.called_back_at))
    for answer in answers:
        if answer.answered_at is not None and (s := bucket(answer.enqueued_at)) is not None:
            s.to_answer.append(_seconds(answer.enqueued_at, answer.answered_at))
    return found


def service_levels(
    calls: Iterable[CallRow],
    messages: Iterable[MessageRow],
    answers: Iterable[AnswerRow],
    zone: ZoneInfo,
    now: dt.datetime,
    by: By,
    count: int,
) -> list[Period]:
    """The client's service levels for each of the last `count` days or weeks, oldest first."""
    found = samples_by_period(calls, messages, answers, zone, now, by, count)
    return [Period.of(start, samples) for start, samples in found.items()]


def _seconds(start: dt.datetime, end: dt.datetime) -> float:
    return max(0.0, (end - start).total_seconds())
