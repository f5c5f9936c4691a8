"""Service levels decided from plain rows and an injected now: each client's own days and
weeks, what counts as abandoned, and p50/p90 of the times that really occurred."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.levels.figures import (
    AnswerRow,
    CallRow,
    MessageRow,
    Timing,
    period_starts,
    service_levels,
)

LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)  # Thursday


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def message(at: str, *, ack: float | None = None, back: float | None = None,
            urgency: str = "urgent", outcome: str = "message") -> MessageRow:  # fmt: skip
    taken = utc(at)
    return MessageRow(
        taken, urgency, outcome,
        taken + dt.timedelta(minutes=ack) if ack is not None else None,
        taken + dt.timedelta(minutes=back) if back is not None else None,
    )  # fmt: skip


def test_days_are_the_clients_own_and_the_last_is_today() -> None:
    starts = period_starts(NOW, NEW_YORK, "day", 3)
    assert starts == [dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 26)]
    # 03:00 UTC on the 26th is the evening of the 25th in New York
    late = [CallRow(utc("2026-11-26 03:00"), True, "message")]
    by_day = service_levels(late, [], [], NEW_YORK, NOW, "day", 3)
    assert [p.calls for p in by_day] == [0, 1, 0]
    assert [p.calls for p in service_levels(late, [], [], LONDON, NOW, "day", 3)] == [0, 0, 1]


def test_weeks_start_on_monday() -> None:
    assert period_starts(NOW, LONDON, "week", 2) == [dt.date(2026, 11, 16), dt.date(2026, 11, 23)]
    calls = [
        CallRow(utc("2026-11-22 23:30"), True, None),
        CallRow(utc("2026-11-23 00:30"), True, None),
    ]
    assert [p.calls for p in service_levels(calls, [], [], LONDON, NOW, "week", 2)] == [1, 1]


def test_a_call_is_abandoned_when_the_caller_left_before_a_message_or_a_person() -> None:
    at = utc("2026-11-26 01:00")
    calls = [
        CallRow(at, True, None),  # hung up in the menu
        CallRow(at, True, "partial"),  # hung up while leaving the message
        CallRow(at, True, "message"),
        CallRow(at, True, "connected"),  # a person answered
        CallRow(at, False, None),  # still on the line: not abandoned (yet)
    ]
    (today,) = service_levels(calls, [], [], LONDON, NOW, "day", 1)
    assert (today.calls, today.abandoned) == (5, 2)


def test_times_to_acknowledge_and_call_back_are_p50_and_p90_of_real_values() -> None:
    messages = [message("2026-11-26 01:00", ack=m, back=m * 10) for m in range(1, 11)]
    messages += [
        message("2026-11-26 01:00", urgency="routine"),  # nobody yet: counted, not timed
        message("2026-11-26 01:00", ack=0, outcome="connected"),  # taken live by a person
    ]
    (today,) = service_levels([], messages, [], LONDON, NOW, "day", 1)
    assert today.messages == {"emergency": 0, "urgent": 11, "routine": 1}
    assert today.acknowledge == Timing(10, 5 * 60, 9 * 60)
    assert today.call_back == Timing(10, 50 * 60, 90 * 60)


def test_pa_time_to_answer_counts_the_callers_a_pa_answered() -> None:
    queued = utc("2026-11-26 01:00")
    answers = [AnswerRow(queued, queued + dt.timedelta(seconds=s)) for s in (10, 20, 90)]
    answers.append(AnswerRow(queued, None))  # gave up waiting
    (today,) = service_levels([], [], answers, LONDON, NOW, "day", 1)
    assert today.pa_answer == Timing(3, 20, 90)


def test_a_quiet_period_has_zero_counts_and_no_times() -> None:
    (today,) = service_levels([], [], [], LONDON, NOW, "day", 1)
    assert (today.calls, today.abandoned, today.acknowledge) == (0, 0, Timing(0, None, None))
