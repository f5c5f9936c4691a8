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


class BrokenAt(BaseModel):
    """The first event of a timeline that does not match its chain."""

    seq: int  # its place in the timeline, from 1
    event_id: int | None  # None: events are missing at the end
    reason: str


class TimelineCheck(BaseModel):
    """Whether a message's timeline is as it was written (see `app/messages/chain.py`).

    `head` is the last event's hash: a client that keeps it can later tell that nothing was
    rewritten since, even by someone able to recompute every hash."""

    message_id: int
    client: str | None = None  # whose record it is (the client's slug)
    intact: bool
    events: int  # events checked before the first break, or all of them
    head: str | None
    broken_at: BrokenAt | None = None


class ReadOut(BaseModel):
    """One read of a message's content, as its client sees it in the read log."""

    at: dt.datetime
    reader: str
    via: str  # portal | api | export | console | cli | call
