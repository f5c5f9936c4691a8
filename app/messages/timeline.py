"""A message's timeline: one row per thing that happened to it, in the caller's transaction,
hash-chained (`app.messages.chain`) so a later edit shows.

Appending is the one place that writes `message_events`. Two appends to one message never
fork the chain: the first statement moves the message's own `timeline_length` on, which takes
the message's row lock on PostgreSQL (a second appender waits there, then reads the length
the first one committed) and happens under SQLite's one write lock. The unique key
(message_id, seq) refuses a fork should anything get past that.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, cast

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.messages.chain import (
    Broken,
    ChainedEvent,
    Intact,
    event_hash,
    utc_instant,
    verify_chain,
    verify_content,
)
from app.messages.models import Message, MessageEvent
from app.messages.schemas import BrokenAt, TimelineCheck

MESSAGE_EVENTS = MessageEvent.metadata.tables[MessageEvent.__tablename__]
MESSAGES = Message.metadata.tables[Message.__tablename__]


class MessageGoneError(LookupError):
    """No such message (never saved, or purged): nothing to put on its timeline."""


def add_event(
    session: Session, message_id: int, kind: str, at: dt.datetime, /, **detail: Any
) -> None:
    """Written at once (after anything the session has pending), so the timeline keeps order,
    as the next link of the message's chain."""
    session.flush()  # what is pending goes first: the timeline keeps the order things happened
    at = utc_instant(at)
    detail = json.loads(json.dumps(detail))  # hashed exactly as it is stored and read back
    # The message's row: its lock (PostgreSQL) serialises appends; its length is this seq.
    claimed = session.execute(_CLAIM_NEXT, {"message": message_id}).first()
    if claimed is None:
        raise MessageGoneError(f"no message {message_id}")
    seq, prev_hash = cast(tuple[int, str | None], tuple(claimed))
    digest = event_hash(message_id, seq, at, kind, detail, prev_hash)
    event = {
        "message": message_id, "kind": kind, "at": at, "detail": detail, "seq": seq,
        "prev_hash": prev_hash, "hash": digest,
    }  # fmt: skip
    if session.get_bind().dialect.name == "postgresql":  # one round trip for both
        session.execute(_APPEND_AND_SET_HEAD, event)
    else:
        session.execute(_APPEND, event)
        session.execute(_SET_HEAD, event)


# Built once, run with parameters: building a statement costs more than running it.
_CLAIM_NEXT = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("message"))
    .values(
        timeline_length=MESSAGES.c.timeline_length + 1,
        updated_at=MESSAGES.c.updated_at,  # an event is not an edit of the message
    )
    .returning(MESSAGES.c.timeline_length, MESSAGES.c.timeline_hash)
)
_APPEND = insert(MESSAGE_EVENTS).values(
    message_id=bindparam("message"), kind=bindparam("kind"),
    at=bindparam("at"), detail=bindparam("detail"), seq=bindparam("seq"),
    prev_hash=bindparam("prev_hash"), hash=bindparam("hash"),
)  # fmt: skip
_SET_HEAD = (
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("message"))
    .values(timeline_hash=bindparam("hash"), updated_at=MESSAGES.c.updated_at)
)
_APPEND_AND_SET_HEAD = _SET_HEAD.add_cte(_APPEND.cte("appended"))


def verify_timeline(session: Session, message_id: int) -> Intact | Broken:
    """Whether the message's timeline is as it was written, and its content as the timeline
    says (the message must exist)."""
    message = session.execute(
        select(
            MESSAGES.c.timeline_length, MESSAGES.c.timeline_hash, MESSAGES.c.caller,
            MESSAGES.c.answers, MESSAGES.c.transcription,
        ).where(MESSAGES.c.id == message_id)
    ).one()  # fmt: skip
    rows = session.execute(
        select(MESSAGE_EVENTS)
        .where(MESSAGE_EVENTS.c.message_id == message_id)
        .order_by(MESSAGE_EVENTS.c.seq, MESSAGE_EVENTS.c.id)
    )
    events = [
        ChainedEvent(
            id=row.id, message_id=row.message_id, seq=row.seq, at=row.at, kind=row.kind,
            detail=row.detail, prev_hash=row.prev_hash, hash=row.hash,
        )
        for row in rows
    ]  # fmt: skip
    verdict = verify_chain(events, message.timeline_length, message.timeline_hash)
    if isinstance(verdict, Broken):
        return verdict
    changed = verify_content(events, message.caller, message.answers, message.transcription)
    return changed or verdict


def timeline_check(message_id: int, verdict: Intact | Broken) -> TimelineCheck:
    """A verdict as the API and `nightdesk messages verify --json` show it."""
    if isinstance(verdict, Intact):
        return TimelineCheck(
            message_id=message_id, intact=True, events=verdict.events, head=verdict.head
        )
    broken = BrokenAt(seq=verdict.seq, event_id=verdict.event_id, reason=verdict.reason)
    return TimelineCheck(
        message_id=message_id, intact=False, events=verdict.seq - 1, head=None, broken_at=broken
    )
