"""How a message looks from outside: the CLI's --json, the API, and webhook events' `data`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class MessageOut(BaseModel):
    """One message, the one shape every outside reader gets."""

    id: int
    client: str | None
    caller: str
    urgency: str
    outcome: str
    status: str
    answers: dict[str, Any]
    transcription: str | None
    recording_url: str | None = Field(
        description="Nightdesk's own address of the recording, relative to Nightdesk's URL "
        "(it plays through Nightdesk, with the caller's credentials); never Twilio's"
    )
    recording_seconds: int | None
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    called_back_at: dt.datetime | None = None
    called_back_by: str | None = None
    closed_at: dt.datetime | None = None
    closed_by: str | None = None
    close_note: str | None = None


class TimelineEntry(BaseModel):
    at: dt.datetime
    source: str  # call | message
    kind: str
    detail: dict[str, Any]


class MessageDetail(MessageOut):
    call_sid: str | None
    timeline: list[TimelineEntry]
