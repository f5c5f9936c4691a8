"""Messages taken from callers, and their timelines."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class MessageStatus(StrEnum):
    new = "new"
    notified = "notified"
    acknowledged = "acknowledged"
    unacknowledged = "unacknowledged"  # the whole policy ran and nobody acknowledged
    closed = "closed"


class Message(Base):
    __tablename__ = "messages"
    # A client's messages, newest first, a page at a time (the portal and /api/v1).
    __table_args__ = (Index("ix_messages_client_newest", "client_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null only for a call to a number no client owns: the message is still kept for an operator.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    caller: Mapped[str] = mapped_column(String(255))  # as on its call: a number or SIP address
    answers: Mapped[dict[str, Any]]
    urgency: Mapped[str] = mapped_column(String(16))
    # message: taken by the flow; partial: caller hung up first; connected: a person was
    # reached; voicemail: taken by the fallback or the engine's last resort.
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.new, index=True)
    recording_url: Mapped[str | None] = mapped_column(String(500))
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    recording_seconds: Mapped[int | None]
    transcription: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    acknowledged_at: Mapped[dt.datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    # The client's follow-up, from the portal or the API: the caller called back, the matter closed.
    called_back_at: Mapped[dt.datetime | None]
    called_back_by: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(200))
    close_note: Mapped[str | None] = mapped_column(Text)
    # The end of its timeline's hash chain (app/messages/chain.py): how many events, and the
    # last one's hash. Moved by every event appended, so the chain can't lose its tail unseen.
    timeline_length: Mapped[int] = mapped_column(default=0, server_default="0")
    timeline_hash: Mapped[str | None] = mapped_column(String(64))


class MessageFacts(Protocol):
    """What the outbox needs of a message: a `Message` row, or a `SavedMessage` just inserted."""

    @property
    def id(self) -> int: ...
    @property
    def client_id(self) -> int | None: ...
    @property
    def caller(self) -> str: ...
    @property
    def urgency(self) -> str: ...


@dataclass(frozen=True)
class SavedMessage:
    """A message as it was saved, without loading it back as an ORM object."""

    id: int
    client_id: int | None
    caller: str
    urgency: str
    outcome: str


def message_ref(message_id: int) -> str:
    """A short reference a contact can text back ("ACK 4F"): the id in base 36."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        message_id, rest = divmod(message_id, 36)
        out = digits[rest] + out
        if message_id == 0:
            return out


def ref_to_id(ref: str) -> int | None:
    try:
        return int(ref, 36)
    except ValueError:
        return None


class MessageEvent(Base):
    """One line of a message's timeline: taken, queued, sent, delivered, acknowledged.

    Hash-chained (app/messages/chain.py): written only by `app.messages.timeline.add_event`,
    which numbers it (`seq`, one chain per message: the unique key refuses a fork) and hashes it.
    """

    __tablename__ = "message_events"
    __table_args__ = (UniqueConstraint("message_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]
    seq: Mapped[int]
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class MessageRead(Base):
    """One read of a message's content (what the caller said, their number, the recording) by a
    person or an API key, for a client in privacy mode: who, when, and where from."""

    __tablename__ = "message_reads"
    __table_args__ = (Index("ix_message_reads_message", "message_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    at: Mapped[dt.datetime]
    reader: Mapped[str] = mapped_column(String(200))  # a person's name, an API key, a contact
    user_id: Mapped[int | None]  # the signed-in person, if it was one (no FK: accounts is above)
    via: Mapped[str] = mapped_column(String(16))  # portal | api | export | console | cli | call
