"""What a client does with its messages: acknowledge one, record calling the caller back, close it.

Each is one step of a unit of work (adds and flushes; the caller commits), limited to the
messages the asker may see, and goes on the message's timeline with who did it and how (`via`:
"portal" or "api"). Following a message up means someone has it: recording a call back or
closing acknowledges it first, which stops its escalation as an SMS reply would.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.service import Principal
from app.acks.service import acknowledge, record_called_back
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.inbox.queries import visible
from app.messages.models import Message, MessageStatus
from app.messages.queries import MessageNotFoundError, message_out
from app.messages.schemas import MessageOut
from app.messages.timeline import add_event
from app.webhooks.events import message_event


def acknowledge_message(
    session: Session,
    flows: FlowStore,
    principal: Principal,
    message_id: int,
    *,
    via: str,
    now: dt.datetime,
) -> MessageOut:
    """The asker has it: escalation stops (a repeat, or a message someone has, changes nothing)."""
    message = _own_message(session, principal, message_id)
    _acknowledge(session, flows, principal, message, via, now)
    return _out(session, message)


def record_call_back(
    session: Session,
    flows: FlowStore,
    principal: Principal,
    message_id: int,
    *,
    note: str | None,
    via: str,
    now: dt.datetime,
) -> MessageOut:
    """Someone called the caller back (each call back is on the timeline; the first is kept)."""
    message = _own_message(session, principal, message_id)
    _called_back(session, flows, principal, message, note, via, now)
    return _out(session, message)


def close_message(
    session: Session,
    flows: FlowStore,
    principal: Principal,
    message_id: int,
    *,
    note: str | None,
    called_back: bool,
    via: str,
    now: dt.datetime,
) -> MessageOut:
    """Nothing more to do about this message. Closing a closed one changes nothing."""
    message = _own_message(session, principal, message_id)
    if message.status == MessageStatus.closed:
        return _out(session, message)
    if called_back and message.called_back_at is None:
        _called_back(session, flows, principal, message, None, via, now)
    else:
        _acknowledge(session, flows, principal, message, via, now)
    message.status = MessageStatus.closed
    message.closed_at, message.closed_by, message.close_note = now, principal.name, note or None
    add_event(session, message.id, "closed", now, by=principal.name, via=via, note=note or None)
    message_event(session, message, "message.closed", now)
    return _out(session, message)


def _called_back(
    session: Session,
    flows: FlowStore,
    principal: Principal,
    message: Message,
    note: str | None,
    via: str,
    now: dt.datetime,
) -> None:
    _acknowledge(session, flows, principal, message, via, now)
    record_called_back(session, message, by=principal.name, via=via, now=now, note=note or None)


def _acknowledge(
    session: Session,
    flows: FlowStore,
    principal: Principal,
    message: Message,
    via: str,
    now: dt.datetime,
) -> None:
    # The caller and the other contacts are told who has the message: a person's name, never
    # an API key's ("Someone from Acme Plumbing has your message").
    told_as = principal.name if principal.user_id is not None else "Someone"
    acknowledge(session, flows, message.id, by=principal.name, via=via, now=now, told_as=told_as)


def _own_message(session: Session, principal: Principal, message_id: int) -> Message:
    """The message, locked for this unit of work, if the asker may see it."""
    message = session.scalars(
        select(Message)
        .where(Message.id == message_id, visible(principal, Message.client_id))
        .with_for_update()
    ).first()
    if message is None:
        raise MessageNotFoundError(f"no message {message_id}")
    return message


def _out(session: Session, message: Message) -> MessageOut:
    slug = session.scalar(select(Client.slug).where(Client.id == message.client_id))
    return message_out(message, slug)
