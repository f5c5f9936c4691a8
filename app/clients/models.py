"""Client businesses, their numbers and contacts, and the flow versions they answer with.

These rows are synced from `voice_flows/` by `nightdesk flows sync`; the YAML files stay the
source of truth, the rows let calls, messages and deliveries point at something stable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # Privacy mode, from the flow file: reads of its messages are logged (`message_reads`).
    private: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The flow version new calls start with (no FK: flow_versions already points here).
    active_flow_id: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PhoneNumber(Base):
    """A Twilio number that rings through to a client."""

    __tablename__ = "phone_numbers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("client_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    channels: Mapped[list[Any]]
    active: Mapped[bool] = mapped_column(default=True)
    # Replied STOP: Twilio blocks texts to them until they reply START; we stop trying.
    sms_opted_out: Mapped[bool] = mapped_column(default=False)


class FlowVersion(Base):
    """One accepted version of a client's flow file; a live call keeps the version it began with."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("client_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
