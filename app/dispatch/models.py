"""The outbox: notifications owed, and where each message stands in its escalation policy.

Rows here are written in the same transaction as the message or acknowledgement they are about,
and worked through by the dispatcher under leases. Domain rows, not a general-purpose task queue.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class DeliveryKind(StrEnum):
    notify = "notify"  # the message itself, to a contact (an escalation step)
    caller_update = "caller_update"  # "your message has been passed on" to the caller
    info = "info"  # "Sam has it" to the other contacts, confirmations
    fallback = "fallback"  # nobody acknowledged: tell the client's fallback contact
    summary = "summary"  # the morning summary, an email about many messages (app/summaries)
    notice = "notice"  # an email to the client about its service, e.g. a paused webhook


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"
    cancelled = "cancelled"


OPEN_DELIVERY = (DeliveryStatus.pending, DeliveryStatus.sending)


class Delivery(Base):
    """One notification to one address on one channel.

    Most are about one message. An email about no single message (a summary, a notice) has no
    `message_id`: its subject, text (`body`) and `html` are written when it is queued.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "status", "due_at"),
        Index("ix_deliveries_address", "address", "channel", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[str] = mapped_column(String(16), default=DeliveryKind.notify)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    # What makes this notification unique: a second insert of the same one is refused, so no
    # contact is notified twice for one escalation step, however often a step is retried.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    round: Mapped[int] = mapped_column(default=0)
    step: Mapped[int] = mapped_column(default=0)
    failover: Mapped[bool] = mapped_column(default=False)
    # 0: the policy's first run; 1 on: run again because a promised call back was overdue,
    # which the notification says.
    lap: Mapped[int] = mapped_column(default=0, server_default="0")
    body: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(300))  # emails with no message_id
    html: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending)
    lease_until: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    # Set while a send is in flight: if the worker dies, whoever retries asks Twilio first.
    uncertain: Mapped[bool] = mapped_column(default=False)
    # The attempt as claimed: which send it went in (the id of the send's first delivery: an
    # SMS bundles several), from which number, since when, and the SMS's exact words. While
    # its outcome is unknown a retry sends exactly this again, with the same deliveries, and is
    # looked up at Twilio by it; only a definite refusal lets the next attempt start afresh.
    bundle_key: Mapped[int | None] = mapped_column(index=True)
    sent_body: Mapped[str | None] = mapped_column(Text)
    sent_from: Mapped[str | None] = mapped_column(String(32))
    first_attempt_at: Mapped[dt.datetime | None]
    provider_sid: Mapped[str | None] = mapped_column(String(200), index=True)
    # Twilio's own word: a text's final status (its progress isn't recorded), a call's latest.
    provider_status: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EscalationState(StrEnum):
    active = "active"
    acknowledged = "acknowledged"
    exhausted = "exhausted"


class Escalation(Base):
    """Where one message is in its client's escalation policy, and when the next step is due;
    and, when the client promises callers a call back, when that falls due."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_due", "state", "next_at"),
        Index("ix_escalations_callback_due", "callback_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    urgency: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(default=0)
    step: Mapped[int] = mapped_column(default=0)
    next_at: Mapped[dt.datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=EscalationState.active)
    # 0: the first run through the policy; 1: run again because the call back was overdue.
    lap: Mapped[int] = mapped_column(default=0, server_default="0")
    # The promised call back's deadline; cleared by whoever handles it, so it fires once.
    callback_due_at: Mapped[dt.datetime | None]
    callback_missed_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProviderEvent(Base):
    """A status callback already applied, by provider id and status: a repeat does nothing."""

    __tablename__ = "provider_events"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
