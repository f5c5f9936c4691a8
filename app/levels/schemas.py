"""A client's service levels as the API shows them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class TimingOut(BaseModel):
    count: int = Field(description="How many were measured")
    p50_seconds: float | None = Field(description="Median; null when none were measured")
    p90_seconds: float | None = Field(description="90th percentile (nearest rank)")


class PeriodOut(BaseModel):
    start: dt.date = Field(description="The period's first day, on the client's calendar")
    calls_taken: int
    abandoned_calls: int = Field(
        description="The caller hung up before leaving a message or reaching a person"
    )
    messages: dict[str, int] = Field(description="Messages taken, by urgency")
    time_to_acknowledge: TimingOut = Field(
        description="From taking a message to someone acknowledging it (not those a person "
        "answered live)"
    )
    time_to_call_back: TimingOut = Field(description="From taking a message to the call back")
    pa_time_to_answer: TimingOut = Field(description="From joining the queue to a PA answering")


class ServiceLevelsOut(BaseModel):
    client: str
    name: str
    timezone: str
    by: Literal["day", "week"]
    periods: list[PeriodOut] = Field(description="Oldest first; the last is the current one")
