"""Reading a client's messages, calls and set-up: every read is limited to what the asker may see.

A client's user or API key sees its own client only; anything else is "not found", exactly as if
it did not exist (never "forbidden": that would say it exists). Staff see every client.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.accounts.service import Principal
from app.calls.models import Call, CallEvent
from app.calls.queries import message_story
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.flows.rota import next_handoffs, who_is_on_call
from app.flows.schema import Contact, Flow
from app.inbox.filters import Cursor, MessageFilter, utc
from app.inbox.schemas import CallDetail, ClientOverview, ContactOut, HandoffOut
from app.messages.models import Message, MessageStatus
from app.messages.queries import MessageNotFoundError, message_out
from app.messages.reads import Reader, log_reads, reads_of
from app.messages.schemas import (
    MessageDetail,
    MessageOut,
    ReadOut,
    TimelineCheck,
    TimelineEntry,
)
from app.messages.timeline import timeline_check, verify_timeline
from app.timeutil import as_utc

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class CallNotFoundError(LookupError):
    """No such call (or, for a client, none of theirs)."""


class NoRecordingError(LookupError):
    """The message has no recording (or, for a client, is none of theirs)."""


class NoClientError(LookupError):
    """The asker belongs to no client: staff have no client's set-up of their own."""


@dataclass(frozen=True)
class Page:
    """Messages, newest first, and where the next (older) page starts; None: this is the last."""

    items: list[MessageOut]
    next: Cursor | None


def visible(
    principal: Principal, client_id: InstrumentedAttribute[int | None]
) -> ColumnElement[bool]:
    """The rows (by their `client_id` column) `principal` may see."""
    if principal.client_id is not None:
        return client_id == principal.client_id
    return true() if principal.is_staff else false()


def reader(principal: Principal) -> Reader:
    """The principal as the read log names it."""
    return Reader(principal.name, principal.user_id)


def find_messages(
    session: Session,
    principal: Principal,
    filters: MessageFilter,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
    *,
    via: str,
    now: dt.datetime,
) -> Page:
    """One page of the messages `principal` may see that match `filters`, newest first; each
    read is logged (`via` the portal, the API, an export) for clients in privacy mode."""
    query = (
        select(Message, Client.slug, Client.private)
        .outerjoin(Client, Client.id == Message.client_id)
        .where(visible(principal, Message.client_id), *_matching(filters))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit + 1)  # one more than shown: is there a next page?
    )
    if after is not None:
        query = query.where(
            or_(
                Message.created_at < after.created_at,
                and_(Message.created_at == after.created_at, Message.id < after.id),
            )
        )
    rows = session.execute(query).all()
    items = [message_out(message, slug) for message, slug, _ in rows[:limit]]
    private = [message.id for message, _, is_private in rows[:limit] if is_private]
    log_reads(session, private, reader(principal), via, now)  # none: no round trip
    more = len(rows) > limit
    return Page(items, Cursor(items[-1].created_at, items[-1].id) if more else None)


def _matching(filters: MessageFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Message.status == filters.status)
    if filters.urgency is not None:
        conditions.append(Message.urgency == filters.urgency)
    # Stored instants are UTC (SQLite keeps them without an offset): compare in UTC.
    if filters.since is not None:
        conditions.append(Message.created_at >= utc(filters.since))
    if filters.until is not None:
        conditions.append(Message.created_at < utc(filters.until))
    if filters.waiting_for_call_back:
        conditions.append(Message.status != MessageStatus.closed)
        conditions.append(Message.called_back_at.is_(None))
    return conditions


def find_message(
    session: Session, principal: Principal, message_id: int, *, via: str, now: dt.datetime
) -> MessageDetail:
    """A message `principal` may see, with its call's timeline and its own; the read is logged
    for clients in privacy mode."""
    if _check_visible(session, principal, message_id):
        log_reads(session, [message_id], reader(principal), via, now)
    return message_story(session, message_id)


def check_timeline(session: Session, principal: Principal, message_id: int) -> TimelineCheck:
    """Whether a message `principal` may see still has the timeline it was written with."""
    mine = session.execute(
        select(Message.id, Client.slug)
        .outerjoin(Client, Client.id == Message.client_id)
        .where(Message.id == message_id, visible(principal, Message.client_id))
    ).first()
    if mine is None:
        raise MessageNotFoundError(f"no message {message_id}")
    check = timeline_check(message_id, verify_timeline(session, message_id))
    return check.model_copy(update={"client": mine.slug})


def find_reads(session: Session, principal: Principal, message_id: int) -> list[ReadOut]:
    """Who has read a message `principal` may see, oldest first (privacy mode's read log)."""
    _check_visible(session, principal, message_id)
    return reads_of(session, message_id)


def _check_visible(session: Session, principal: Principal, message_id: int) -> bool:
    """Not found unless `principal` may see the message; whether its client is in privacy mode."""
    mine = (
        select(Client.private)
        .select_from(Message)
        .outerjoin(Client, Client.id == Message.client_id)
        .where(Message.id == message_id, visible(principal, Message.client_id))
    )
    row = session.execute(mine).first()
    if row is None:
        raise MessageNotFoundError(f"no message {message_id}")
    return bool(row.private)


def find_recording(
    session: Session, principal: Principal, message_id: int, *, via: str, now: dt.datetime
) -> str:
    """The Twilio URL of a message's recording, for Nightdesk to fetch: never shown to people.
    Playing it is a read, logged for clients in privacy mode."""
    row = session.execute(
        select(Message.recording_url, Client.private)
        .outerjoin(Client, Client.id == Message.client_id)
        .where(Message.id == message_id, visible(principal, Message.client_id))
    ).first()
    if row is None or row.recording_url is None:
        raise NoRecordingError(f"no recording for message {message_id}")
    if row.private:
        log_reads(session, [message_id], reader(principal), via, now)
    url: str = row.recording_url
    return url


def find_call(session: Session, principal: Principal, sid: str) -> CallDetail:
    """A call `principal` may see, with its timeline."""
    row = session.execute(
        select(Call, Client.slug)
        .outerjoin(Client, Client.id == Call.client_id)
        .where(Call.sid == sid, visible(principal, Call.client_id))
    ).first()
    if row is None:
        raise CallNotFoundError(f"no call {sid}")
    call, slug = row
    events = session.scalars(
        select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
    )
    return CallDetail(
        sid=call.sid,
        client=slug,
        caller=call.caller,
        called=call.called,
        status=call.status,
        started_at=as_utc(call.started_at),
        ended_at=as_utc(call.ended_at) if call.ended_at else None,
        message_id=session.scalar(select(Message.id).where(Message.call_id == call.id)),
        timeline=[
            TimelineEntry(at=as_utc(e.at), source="call", kind=e.kind, detail=e.detail)
            for e in events
        ],
    )


@dataclass(frozen=True)
class ClientFacts:
    slug: str
    name: str
    timezone: str


def client_facts(session: Session, principal: Principal) -> ClientFacts:
    """The asker's own client: its name, and the time zone its people read times in."""
    client = session.get(Client, principal.client_id) if principal.client_id else None
    if client is None:
        raise NoClientError("this account belongs to no client")
    return ClientFacts(client.slug, client.name, client.timezone)


def client_overview(
    session: Session, flows: FlowStore, principal: Principal, now: dt.datetime
) -> ClientOverview:
    """The asker's client as its current flow file describes it, and who is on call at `now`."""
    facts = client_facts(session, principal)
    flow = flows.for_client(session, principal.client_id)
    if flow is None:  # a client whose flow was never loaded: nothing to say yet
        return ClientOverview(
            client=facts.slug, name=facts.name, timezone=facts.timezone, numbers=[],
            contacts=[], on_call=None, next_handoffs=[],
        )  # fmt: skip
    on_call, handoffs = None, []
    if flow.rotation is not None:
        on_call = _contact(flow, who_is_on_call(flow.rotation, flow.zone, now))
        handoffs = [
            HandoffOut(at=h.at, contact=contact)
            for h in next_handoffs(flow.rotation, flow.zone, now)
            if (contact := _contact(flow, h.contact)) is not None
        ]
    return ClientOverview(
        client=facts.slug,
        name=flow.name,
        timezone=flow.timezone,
        numbers=list(flow.numbers),
        contacts=[_contact_out(c) for c in flow.contacts],
        on_call=on_call,
        next_handoffs=handoffs,
    )


def _contact(flow: Flow, contact_id: str) -> ContactOut | None:
    contact = flow.contact(contact_id)
    return _contact_out(contact) if contact else None


def _contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.id,
        name=contact.name,
        phone=contact.phone,
        email=contact.email,
        channels=[c.value for c in contact.channels],
    )
