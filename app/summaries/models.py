"""One row per summary a client is owed: the stretch of time it covers, and what became of it."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class SummaryStatus(StrEnum):
    queued = "queued"  # its emails are in the outbox (deliveries of kind "summary")
    skipped = "skipped"  # nothing came in and the client chose `skip_empty`
    no_recipients = "no_recipients"  # no recipient has an email address


class Summary(Base):
    """A summary of one client's messages from `period_start` up to `period_end`.

    `key` is the client and the period's start: a second worker, a restart or a second
    `nightdesk summaries send` computes the same key and its insert does nothing, so each
    stretch of time is summarised once. The next summary starts where this one ended.
    """

    __tablename__ = "summaries"
    __table_args__ = (Index("ix_summaries_client_end", "client_id", "period_end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    period_start: Mapped[dt.datetime]
    period_end: Mapped[dt.datetime]
    on_demand: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16))
    messages: Mapped[int] = mapped_column(default=0)
    urgent: Mapped[int] = mapped_column(default=0)
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def summary_key(client_id: int, period_start: dt.datetime) -> str:
    """The unique key of a client's summary that starts at `period_start` (aware UTC)."""
    return f"c{client_id}:{period_start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
