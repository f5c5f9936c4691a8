"""How a client's calls and its own set-up look from outside (the API; the portal shows them)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from app.messages.schemas import TimelineEntry

NOTE_LENGTH = 2000  # a note on a call back or a closing: a few paragraphs at most


class CallDetail(BaseModel):
    """A call to one of the client's numbers, with everything that happened on it."""

    sid: str = Field(description="Twilio's CallSid")
    client: str | None
    caller: str
    called: str = Field(description="The client's number that was called")
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    message_id: int | None = Field(description="The message taken on this call, if any")
    timeline: list[TimelineEntry]


class ContactOut(BaseModel):
    id: str
    name: str
    phone: str | None
    email: str | None
    channels: list[str] = Field(description="In order of preference")


class HandoffOut(BaseModel):
    at: dt.datetime
    contact: ContactOut


class ClientOverview(BaseModel):
    """The client's numbers, contacts and who is on call now, as its flow file says."""

    client: str = Field(description="The client's short id (its slug)")
    name: str
    timezone: str
    numbers: list[str]
    contacts: list[ContactOut]
    on_call: ContactOut | None = Field(description="Null when the client has no rotation")
    next_handoffs: list[HandoffOut]
