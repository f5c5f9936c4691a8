"""Reading a client's rows for its service levels, as plain values (`figures.py` does the rest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calls.models import Call
from app.clients.models import Client
from app.console.models import QueueEntry
from app.levels.figures import AnswerRow, CallRow, MessageRow
from app.messages.models import Message
from app.timeutil import as_utc

LIVE_CALL = ("queued", "ringing", "in-progress")  # Twilio's statuses of a call not over yet


@dataclass(frozen=True)
class ClientRows:
    slug: str
    name: str
    timezone: str
    calls: list[CallRow]
    messages: list[MessageRow]
    answers: list[AnswerRow]


def client_rows(session: Session, client_id: int, since: dt.datetime) -> ClientRows:
    """One client's calls, messages and PA queue entries since `since`."""
    client = session.get(Client, client_id)
    if client is None:
        raise LookupError(f"no client {client_id}")
    calls = [
        CallRow(as_utc(started), status not in LIVE_CALL, outcome)
        for started, status, outcome in session.execute(
            select(Call.started_at, Call.status, Message.outcome)
            .outerjoin(Message, Message.call_id == Call.id)
            .where(Call.client_id == client_id, Call.started_at >= since)
        )
    ]
    messages = [
        MessageRow(as_utc(created), urgency, outcome, _utc(acknowledged), _utc(called_back))
        for created, urgency, outcome, acknowledged, called_back in session.execute(
            select(
                Message.created_at, Message.urgency, Message.outcome, Message.acknowledged_at,
                Message.called_back_at,
            ).where(Message.client_id == client_id, Message.created_at >= since)
        )
    ]  # fmt: skip
    answers = [
        AnswerRow(as_utc(enqueued), _utc(answered))
        for enqueued, answered in session.execute(
            select(QueueEntry.enqueued_at, QueueEntry.answered_at).where(
                QueueEntry.client_id == client_id, QueueEntry.enqueued_at >= since
            )
        )
    ]
    return ClientRows(client.slug, client.name, client.timezone, calls, messages, answers)


def client_zones(session: Session) -> list[tuple[int, str]]:
    """(id, time zone) of every client with a flow loaded: the ones /metrics reports on."""
    query = select(Client.id, Client.timezone).where(Client.active_flow_id.is_not(None))
    return [(client_id, zone) for client_id, zone in session.execute(query.order_by(Client.id))]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return as_utc(value) if value is not None else None
