"""How a message looks from outside: the CLI's --json, and the API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel


class MessageOut(BaseModel):
    id: int
    client: str | None
    caller: str
    urgency: str
    outcome: str
    status: str
    answers: dict[str, Any]
    transcription: str | None
    recording_url: str | None
    recording_seconds: int | None
    created_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    called_back_at: dt.datetime | None = None
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


class ReadOut(BaseModel):
    """One read of a message's content, as its client sees it in the read log."""

    at: dt.datetime
    reader: str
    via: str  # portal | api | export | console | cli | call
