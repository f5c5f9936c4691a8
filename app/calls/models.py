"""A phone call and its timeline, keyed by CallSid so any replica can serve its next webhook."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id"))
    # E.164 numbers, or SIP addresses (sip:alice@example.com) for calls over a SIP trunk.
    caller: Mapped[str] = mapped_column(String(255))
    called: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="in-progress")
    state: Mapped[dict[str, Any]]
    # Idempotency for Twilio's repeats: the TwiML handed out last, and the turn it answered.
    turn: Mapped[int] = mapped_column(default=0)
    last_twiml: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]


class CallEvent(Base):
    """One line of a call's timeline: a step entered, a key pressed, words heard, a status."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]
