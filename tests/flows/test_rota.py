"""Who is on call: weekly shifts handed over on the local wall clock, and overrides on top."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.flows.rota import Handoff, next_handoffs, who_is_on_call
from app.flows.schema import Rotation

LONDON = ZoneInfo("Europe/London")
# Weekly shifts from Monday 23 March 2026, handed over at 09:00 London time.
ROTA = {"members": ["dave", "priya", "tom"], "handoff": "09:00", "starts": "2026-03-23"}
WEEKLY = Rotation.model_validate(ROTA)
# Tom covers Christmas, from Christmas Eve at 17:30 until Tuesday morning, and Dave takes
# Christmas lunch (times without an offset are London's).
CHRISTMAS = Rotation.model_validate(
    {
        **ROTA,
        "overrides": [
            {"contact": "tom", "start": "2026-12-24T17:30", "end": "2026-12-29T08:00"},
            {"contact": "dave", "start": "2026-12-25T11:00", "end": "2026-12-25T15:00"},
        ],
    }
)


def utc(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


def test_the_weekly_hand_off_stays_at_nine_local_when_the_clocks_go_forward() -> None:
    # Monday 30 March is the first Monday of British Summer Time: 09:00 BST is 08:00 UTC.
    assert who_is_on_call(WEEKLY, LONDON, utc(3, 30, 7, 59)) == "dave"
    assert who_is_on_call(WEEKLY, LONDON, utc(3, 30, 8, 0)) == "priya"


def test_the_next_hand_offs_follow_the_wall_clock_when_the_clocks_go_back() -> None:
    # 09:00 is 08:00 UTC on 19 October (BST) and 09:00 UTC on 26 October (GMT again).
    assert next_handoffs(WEEKLY, LONDON, utc(10, 18, 12), count=2) == [
        Handoff(utc(10, 19, 8), "dave"),
        Handoff(utc(10, 26, 9), "priya"),
    ]


def test_an_override_wins_over_the_rota_while_it_lasts() -> None:
    assert who_is_on_call(CHRISTMAS, LONDON, utc(12, 24, 17, 29)) == "dave"
    assert who_is_on_call(CHRISTMAS, LONDON, utc(12, 24, 17, 30)) == "tom"
    assert who_is_on_call(CHRISTMAS, LONDON, utc(12, 28, 12)) == "tom"  # priya's week by rota
    assert who_is_on_call(CHRISTMAS, LONDON, utc(12, 29, 8)) == "priya"


def test_a_shorter_override_inside_a_longer_one_wins() -> None:
    assert who_is_on_call(CHRISTMAS, LONDON, utc(12, 25, 12)) == "dave"
    assert who_is_on_call(CHRISTMAS, LONDON, utc(12, 25, 15)) == "tom"


def test_next_hand_offs_include_the_overrides_starting_and_ending() -> None:
    assert next_handoffs(CHRISTMAS, LONDON, utc(12, 24, 12), count=4) == [
        Handoff(utc(12, 24, 17, 30), "tom"),
        Handoff(utc(12, 25, 11), "dave"),
        Handoff(utc(12, 25, 15), "tom"),
        Handoff(utc(12, 29, 8), "priya"),
    ]


def test_a_naive_instant_is_taken_as_utc_even_with_overrides() -> None:
    assert who_is_on_call(CHRISTMAS, LONDON, dt.datetime(2026, 12, 25, 12, 0)) == "dave"
    assert next_handoffs(CHRISTMAS, LONDON, dt.datetime(2026, 12, 25, 12, 0), count=1) == [
        Handoff(utc(12, 25, 15), "tom")
    ]
