"""Reading messages and their timelines, for the operator's CLI and the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clients.models import Client
from app.messages.models import Message, MessageEvent
from app.messages.schemas import MessageDetail, MessageOut, TimelineEntry
from app.timeutil import as_utc


class MessageNotFoundError(LookupError):
    """No such message (or, for a client, none of theirs)."""


def recording_path(message_id: int) -> str:
    """Where a message's recording plays through Nightdesk (Twilio's URL is never shown)."""
    return f"/api/v1/messages/{message_id}/recording"


def message_out(message: Message, client: str | None) -> MessageOut:
    """A message row as the outside sees it (`messages list --json`, the API's items, webhook
    events' `data`)."""
    return MessageOut(
        id=message.id,
        client=client,
        caller=message.caller,
        urgency=message.urgency,
        outcome=message.outcome,
        status=message.status,
        answers=message.answers,
        transcription=message.transcription,
        recording_url=recording_path(message.id) if message.recording_url else None,
        recording_seconds=message.recording_seconds,
        created_at=as_utc(message.created_at),
        acknowledged_at=as_utc(message.acknowledged_at) if message.acknowledged_at else None,
        acknowledged_by=message.acknowledged_by,
        called_back_at=_utc(message.called_back_at),
        called_back_by=message.called_back_by,
        closed_at=_utc(message.closed_at),
        closed_by=message.closed_by,
        close_note=message.close_note,
    )


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return as_utc(value) if value is not None else None


def list_messages(
    session: Session, client: str | None = None, limit: int = 200
) -> list[MessageOut]:
    """Newest first, optionally for one client (by slug)."""
    query = (
        select(Message, Client.slug)
        .outerjoin(Client, Client.id == Message.client_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    if client is not None:
        query = query.where(Client.slug == client)
    return [message_out(message, slug) for message, slug in session.execute(query)]


def message_detail(
    session: Session, message_id: int, call: CallStory | None = None
) -> MessageDetail:
    """A message with its whole story: its call's timeline (`call`, from the calls' side), then
    the message's own."""
    row = session.execute(
        select(Message, Client.slug)
        .outerjoin(Client, Client.id == Message.client_id)
        .where(Message.id == message_id)
    ).first()
    if row is None:
        raise MessageNotFoundError(f"no message {message_id}")
    message, slug = row
    timeline = list(call.timeline) if call else []
    timeline += [
        TimelineEntry(at=as_utc(e.at), source="message", kind=e.kind, detail=e.detail)
        for e in session.scalars(
            select(MessageEvent)
            .where(MessageEvent.message_id == message.id)
            .order_by(MessageEvent.id)
        )
    ]
    timeline.sort(key=lambda entry: entry.at)
    call_sid = call.sid if call else None
    return MessageDetail(
        **message_out(message, slug).model_dump(), call_sid=call_sid, timeline=timeline
    )


@dataclass(frozen=True)
class CallStory:
    """A call's sid and timeline, as a message's detail shows them."""

    sid: str
    timeline: list[TimelineEntry]


def call_id_of(session: Session, message_id: int) -> int | None:
    return session.scalar(select(Message.call_id).where(Message.id == message_id))
