"""How a PA answers a client's caller: the client's answer phrase, in the client's time of day.
Pure: "Good evening, Acme Plumbing, Sam speaking."
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PLACEHOLDERS = ("greeting", "client", "pa")


def part_of_day(local: dt.time) -> str:
    """morning from 05:00, afternoon from 12:00, evening from 18:00 (and through the night,
    when "good morning" at 2 a.m. would sound odd to a caller who hasn't slept)."""
    if dt.time(5) <= local < dt.time(12):
        return "morning"
    if dt.time(12) <= local < dt.time(18):
        return "afternoon"
    return "evening"


def first_name(full_name: str) -> str:
    return full_name.split()[0] if full_name.strip() else full_name


def answer_phrase(template: str, client: str, pa_name: str, zone: ZoneInfo, at: dt.datetime) -> str:
    """The phrase to read when the caller comes through, at `at` in the client's zone."""
    greeting = f"Good {part_of_day(at.astimezone(zone).time())}"
    return template.format(greeting=greeting, client=client, pa=first_name(pa_name))
