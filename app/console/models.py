"""Callers waiting for a PA (queue entries) and where each PA stands (presence)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class EntryStatus(StrEnum):
    waiting = "waiting"  # in line: any available PA may take it
    offered = "offered"  # a PA took it: their phone is ringing, the caller is still in line
    answered = "answered"  # the PA pressed 1 and joined; the caller was moved in with them
    abandoned = "abandoned"  # the caller hung up before a PA had them
    timed_out = "timed_out"  # the flow's hold limit passed: the flow carried on without a PA


OPEN = (EntryStatus.waiting.value, EntryStatus.offered.value)


class QueueEntry(Base):
    """One wait of one caller in a client's queue, from the flow's `queue` step to its end."""

    __tablename__ = "queue_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    queue_name: Mapped[str] = mapped_column(String(64))  # the <Enqueue> name: the client's slug
    caller: Mapped[str] = mapped_column(String(32))
    # What the caller said in the flow before waiting (the call state's answers), and urgency.
    answers: Mapped[dict[str, Any]]
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=EntryStatus.waiting, index=True)
    enqueued_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    pa_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # Each time a PA takes it counts one offer; their phone leg's webhooks name the offer, so
    # a late callback from an earlier, failed leg can't touch a later one.
    offers: Mapped[int] = mapped_column(default=0)
    pa_call_sid: Mapped[str | None] = mapped_column(String(64))  # the PA's phone leg
    offered_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]  # left the queue unanswered, or the conversation ended
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    notes: Mapped[str | None] = mapped_column(Text)  # the PA's wrap-up notes
    wrapped_at: Mapped[dt.datetime | None]
    # The PA's conference, named by Twilio's sid once the PA has joined it: its participants
    # (the caller on hold, a supervisor listening) are changed through it.
    conference_sid: Mapped[str | None] = mapped_column(String(64))
    # A warm transfer to the on-call contact (`app/console/transfer.py`): one at a time, each
    # counted like offers so a late callback from an earlier attempt changes nothing.
    transfer_state: Mapped[str | None] = mapped_column(String(16))
    transfers: Mapped[int] = mapped_column(default=0, server_default="0")
    transfer_contact: Mapped[str | None] = mapped_column(String(64))  # the flow's contact id
    transfer_call_sid: Mapped[str | None] = mapped_column(String(64))  # the contact's leg


class Presence(Base):
    """Where a PA stands, as they last set it, and when their console was last seen."""

    __tablename__ = "pa_presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("queue_entries.id"))
