"""Recordings owed a deletion at Twilio: written in the unit that purges their message, so
Twilio's answer (or silence) never holds up, nor undoes, the purge of the rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class RecordingDeletion(Base):
    """One recording to delete at Twilio; the row goes once Twilio says it is gone."""

    __tablename__ = "recording_deletions"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)  # RE..., as on the message
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    owed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
