"""People who sign in (PAs, supervisors, admins, client users), their sessions and one-time
sign-in links, client API keys, and the audit log of who signed in or tried to.

Every secret (session, link, key) is stored as its SHA-256 only: each is 32 random bytes, so a
fast hash is enough, and a copy of the database signs nobody in. Passwords use argon2.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.timeutil import utcnow


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    pa = "pa"  # a virtual PA: answers calls in the console
    client = "client"  # a client business's user: sees only that client, in the portal and API


STAFF = (Role.admin, Role.supervisor, Role.pa)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # Exactly one client for a client user; none for staff.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # A PA's own phone (+E.164): the console rings it to put them through to a waiting caller.
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[dt.datetime | None]


class SignInLink(Base):
    """A one-time link that signs its user in (printed by `nightdesk users add`)."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class UserSession(Base):
    """A signed-in browser: server-side, so it can be revoked, and expiring."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))  # every form of this session carries it
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class ApiKey(Base):
    """A client's key to `/api/v1`: shown once, stored hashed, revocable."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(
        String(16)
    )  # the key's first characters, to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class AuditEvent(Base):
    """Who signed in, failed to, signed out, or made or revoked a key; and from where."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id"))
    email: Mapped[str | None] = mapped_column(String(254), index=True)  # as typed, for failures
    address: Mapped[str | None] = mapped_column(String(64), index=True)  # the client's IP
    detail: Mapped[dict[str, Any]]
