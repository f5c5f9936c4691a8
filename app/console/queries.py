"""The console's reads: the live snapshot every console shows, a call's screen pop, and the
supervisors' figures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from app.accounts.models import User
from app.clients.models import Client
from app.console.board import EntryRow, PresenceRow
from app.console.models import OPEN, EntryStatus, Presence, QueueEntry
from app.console.presence import State
from app.console.stats import Wait
from app.messages.models import Message
from app.timeutil import as_utc


@dataclass(frozen=True)
class Snapshot:
    """What every console shows: the callers a PA has or may take, and every PA's presence."""

    entries: tuple[EntryRow, ...]
    team: tuple[PresenceRow, ...]

    def entry_status(self, entry_id: int) -> str:
        """An entry's status, or "closed" once nobody has it any more."""
        return next((e.live_status for e in self.entries if e.id == entry_id), "closed")

    def presence_of(self, user_id: int | None) -> PresenceRow | None:
        return next((p for p in self.team if p.user_id == user_id), None)


def load_snapshot(session: Session) -> Snapshot:
    """Waiting and offered callers, callers whose PA has not finished their wrap-up, and the
    team's presence: two statements, whatever the number of consoles watching."""
    pa = aliased(User)
    rows = session.execute(
        select(QueueEntry, Client.name, Client.slug, pa.name)
        .join(Client, Client.id == QueueEntry.client_id)
        .outerjoin(pa, pa.id == QueueEntry.pa_id)
        .where(
            or_(
                QueueEntry.status.in_(OPEN),
                and_(
                    QueueEntry.status == EntryStatus.answered.value,
                    QueueEntry.wrapped_at.is_(None),
                ),
            )
        )
        .order_by(QueueEntry.enqueued_at, QueueEntry.id)
    )
    entries = tuple(_entry(e, client, slug, pa_name) for e, client, slug, pa_name in rows)
    team = tuple(
        _presence(p, name, role)
        for p, name, role in session.execute(
            select(Presence, User.name, User.role).join(User, User.id == Presence.user_id)
        )
    )
    return Snapshot(entries, team)


def _entry(e: QueueEntry, client: str, slug: str, pa_name: str | None) -> EntryRow:
    return EntryRow(
        id=e.id, client=client, client_slug=slug, caller=e.caller, answers=e.answers,
        urgency=e.urgency, status=e.status, enqueued_at=as_utc(e.enqueued_at), pa_id=e.pa_id,
        pa_name=pa_name, transfer=e.transfer_state,
    )  # fmt: skip


def _presence(p: Presence, name: str, role: str) -> PresenceRow:
    return PresenceRow(
        user_id=p.user_id, name=name, role=role, state=State(p.state), since=as_utc(p.since),
        last_seen=as_utc(p.last_seen), entry_id=p.entry_id,
    )  # fmt: skip


def waits_since(session: Session, since: dt.datetime) -> list[Wait]:
    """Every wait in a queue that began after `since`, with its client's time zone."""
    rows = session.execute(
        select(
            Client.name, Client.timezone, QueueEntry.enqueued_at, QueueEntry.status,
            QueueEntry.answered_at,
        )
        .join(Client, Client.id == QueueEntry.client_id)
        .where(QueueEntry.enqueued_at >= since)
    )  # fmt: skip
    return [
        Wait(name, ZoneInfo(zone), as_utc(at), status, as_utc(answered) if answered else None)
        for name, zone, at, status, answered in rows
    ]


@dataclass(frozen=True)
class EarlierMessage:
    id: int
    created_at: dt.datetime
    urgency: str
    status: str
    answers: dict[str, object]
    transcription: str | None


def earlier_messages(
    session: Session, client_id: int, caller: str, call_id: int, limit: int = 5
) -> list[EarlierMessage]:
    """The caller's earlier messages for this client, newest first."""
    rows = session.scalars(
        select(Message)
        .where(Message.client_id == client_id, Message.caller == caller, Message.call_id != call_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return [
        EarlierMessage(m.id, as_utc(m.created_at), m.urgency, m.status, m.answers, m.transcription)
        for m in rows
    ]
