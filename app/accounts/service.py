"""Accounts: adding people, signing them in and out, sessions, API keys, and the audit log.

Each function is one step of a unit of work: it adds and flushes, the caller commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import STAFF, ApiKey, AuditEvent, Role, SignInLink, User, UserSession
from app.accounts.throttle import sign_in_allowed, window_start
from app.accounts.tokens import (
    digest,
    hash_password,
    new_api_key,
    new_token,
    password_matches,
)
from app.clients.models import Client
from app.timeutil import as_utc

log = logging.getLogger("nightdesk.accounts")

LINK_LIFETIME = dt.timedelta(hours=24)
SESSION_LIFETIME = dt.timedelta(hours=12)  # a night shift
SESSION_IDLE = dt.timedelta(hours=2)
SEEN_EVERY = dt.timedelta(minutes=1)  # how often a session's last use is written down


class AccountError(ValueError):
    """A request about accounts that can't be done as asked; the message says why."""


class Refused(StrEnum):
    """Why a sign-in did not happen. Returned, not raised: the attempt is audited all the same
    (a unit of work that raises keeps nothing)."""

    wrong = "wrong"  # email, password or link: deliberately not saying which
    throttled = "throttled"  # too many failures lately, for this account or from this address


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in person, or a client's API key.

    `client_id` set: everything is limited to that client (a client user, an API key).
    """

    user_id: int | None
    name: str
    role: Role
    client_id: int | None
    session_id: int | None = None
    csrf_token: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF


def add_user(
    session: Session,
    email: str,
    role: Role,
    now: dt.datetime,
    *,
    client_slug: str | None = None,
    name: str | None = None,
    password: str | None = None,
    phone: str | None = None,
) -> User:
    """A new account. A client user belongs to exactly one client; staff to none. A PA's
    `phone` is the one the console rings to put them through to callers."""
    email = normalise_email(email)
    phone = normalise_phone(phone) if phone else None
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"there is already an account for {email}")
    client_id = None
    if role is Role.client:
        if not client_slug:
            raise AccountError("a client user needs --client: the client business they belong to")
        client_id = session.scalar(select(Client.id).where(Client.slug == client_slug))
        if client_id is None:
            raise AccountError(f"no client {client_slug!r} (run `nightdesk flows sync` first?)")
    elif client_slug:
        raise AccountError(f"--client is only for client users, not {role.value}")
    user = User(
        email=email,
        name=name or email.split("@")[0],
        role=role.value,
        client_id=client_id,
        password_hash=hash_password(password) if password else None,
        phone=phone,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit(session, "user_added", now, user_id=user.id, client_id=client_id, role=role.value)
    return user


def normalise_phone(phone: str) -> str:
    """A phone number in +E.164 form, as Twilio dials it."""
    try:
        number = phonenumbers.parse(phone.strip(), None)
    except phonenumbers.NumberParseException:
        raise AccountError(f"{phone!r} is not a phone number in +E.164 form") from None
    if not phonenumbers.is_possible_number(number):
        raise AccountError(f"{phone!r} is not a possible phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise AccountError(f"{email!r} is not an email address")
    return email


def sign_in_link(session: Session, user: User, now: dt.datetime) -> str:
    """A one-time token that signs `user` in within LINK_LIFETIME; only its digest is kept."""
    token = new_token()
    session.add(
        SignInLink(user_id=user.id, token_hash=digest(token), expires_at=now + LINK_LIFETIME)
    )
    session.flush()
    return token


def link_is_valid(session: Session, token: str, now: dt.datetime) -> bool:
    """Whether a sign-in link would work, without using it (the page that asks to confirm)."""
    return _usable_link(session, token, now) is not None


def sign_in_with_link(
    session: Session, token: str, address: str | None, now: dt.datetime
) -> tuple[User, str] | Refused:
    """Use a one-time link: the user, and a new session's token."""
    found = _usable_link(session, token, now)
    if found is None:
        audit(session, "sign_in_failed", now, address=address, method="link")
        return Refused.wrong
    link, user = found
    link.used_at = now
    return user, _start_session(session, user, "link", address, now)


def sign_in_with_password(
    session: Session, email: str, password: str, address: str | None, now: dt.datetime
) -> tuple[User, str] | Refused:
    """Check a password, within the limits on failures: the user, and a new session's token."""
    email = email.strip().lower()
    since = window_start(now)
    failures = select(func.count(AuditEvent.id)).where(
        AuditEvent.kind == "sign_in_failed", AuditEvent.at >= since
    )
    for_account = session.scalar(failures.where(AuditEvent.email == email)) or 0
    for_address = session.scalar(failures.where(AuditEvent.address == address)) or 0
    if not sign_in_allowed(for_account, for_address):
        audit(session, "sign_in_throttled", now, email=email, address=address)
        return Refused.throttled
    user = session.scalar(select(User).where(User.email == email, User.active.is_(True)))
    if not password_matches(user.password_hash if user else None, password) or user is None:
        audit(session, "sign_in_failed", now, email=email, address=address, method="password")
        return Refused.wrong
    return user, _start_session(session, user, "password", address, now)


def principal_for_session(session: Session, token: str, now: dt.datetime) -> Principal | None:
    """The signed-in person behind a session cookie, or None: unknown, expired, revoked, idle."""
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == digest(token))
    ).first()
    if row is None:
        return None
    user_session, user = row
    if (
        user_session.revoked_at is not None
        or not user.active
        or as_utc(user_session.expires_at) <= now
        or as_utc(user_session.last_seen_at) + SESSION_IDLE <= now
    ):
        return None
    if as_utc(user_session.last_seen_at) + SEEN_EVERY <= now:
        user_session.last_seen_at = now
    return Principal(
        user.id, user.name, Role(user.role), user.client_id, user_session.id,
        user_session.csrf_token,
    )  # fmt: skip


def sign_out(session: Session, principal: Principal, address: str | None, now: dt.datetime) -> None:
    """End this session for good (the cookie alone could otherwise come back)."""
    if principal.session_id is None:
        return
    user_session = session.get(UserSession, principal.session_id)
    if user_session is not None and user_session.revoked_at is None:
        user_session.revoked_at = now
        audit(session, "signed_out", now, user_id=principal.user_id, address=address)


def create_api_key(
    session: Session, client_slug: str, name: str | None, now: dt.datetime
) -> tuple[ApiKey, str]:
    """A new key for a client: the row, and the key itself (shown once, never stored)."""
    client_id = session.scalar(select(Client.id).where(Client.slug == client_slug))
    if client_id is None:
        raise AccountError(f"no client {client_slug!r} (run `nightdesk flows sync` first?)")
    key = new_api_key()
    row = ApiKey(
        client_id=client_id,
        name=name or f"key created {now:%Y-%m-%d}",
        prefix=key[:12],
        key_hash=digest(key),
        created_at=now,
    )
    session.add(row)
    session.flush()
    audit(session, "api_key_created", now, client_id=client_id, key_id=row.id)
    return row, key


def list_api_keys(session: Session, client_slug: str | None = None) -> list[tuple[ApiKey, str]]:
    """Keys with their client's slug, newest first."""
    query = (
        select(ApiKey, Client.slug)
        .join(Client, Client.id == ApiKey.client_id)
        .order_by(ApiKey.id.desc())
    )
    if client_slug:
        query = query.where(Client.slug == client_slug)
    return [(key, slug) for key, slug in session.execute(query)]


def revoke_api_key(session: Session, key_id: int, now: dt.datetime) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise AccountError(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = now
        audit(session, "api_key_revoked", now, client_id=key.client_id, key_id=key.id)
    return key


def principal_for_api_key(session: Session, key: str, now: dt.datetime) -> Principal | None:
    """The client behind a bearer key, or None for an unknown or revoked key."""
    row = session.execute(
        select(ApiKey, Client.name)
        .join(Client, Client.id == ApiKey.client_id)
        .where(ApiKey.key_hash == digest(key), ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_key, client_name = row
    if api_key.last_used_at is None or as_utc(api_key.last_used_at) + SEEN_EVERY <= now:
        api_key.last_used_at = now
    return Principal(None, f"API key {api_key.prefix}… of {client_name}", Role.client,
                     api_key.client_id)  # fmt: skip


def audit(
    session: Session,
    kind: str,
    now: dt.datetime,
    *,
    user_id: int | None = None,
    client_id: int | None = None,
    email: str | None = None,
    address: str | None = None,
    **detail: Any,
) -> None:
    """One line of the audit log (and of the service's log, without the address)."""
    session.add(
        AuditEvent(
            at=now, kind=kind, user_id=user_id, client_id=client_id, email=email,
            address=address, detail=detail,
        )
    )  # fmt: skip
    log.info(kind, extra={"user_id": user_id, "client_id": client_id, **detail})


def _usable_link(session: Session, token: str, now: dt.datetime) -> tuple[SignInLink, User] | None:
    row = session.execute(
        select(SignInLink, User)
        .join(User, User.id == SignInLink.user_id)
        .where(SignInLink.token_hash == digest(token))
    ).first()
    if row is None:
        return None
    link, user = row
    if link.used_at is not None or as_utc(link.expires_at) <= now or not user.active:
        return None
    return link, user


def _start_session(
    session: Session, user: User, method: str, address: str | None, now: dt.datetime
) -> str:
    token = new_token()
    session.add(
        UserSession(
            user_id=user.id, token_hash=digest(token), csrf_token=new_token(), created_at=now,
            expires_at=now + SESSION_LIFETIME, last_seen_at=now,
        )
    )  # fmt: skip
    user.last_sign_in_at = now
    audit(session, "signed_in", now, user_id=user.id, address=address, method=method)
    return token
