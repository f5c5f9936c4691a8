"""The voice turns' statements: SQLAlchemy Core on the calls table, a few a turn.

Voice turns are nearly all of the service's traffic, so each costs few round trips on
PostgreSQL: a new call is inserted with its client looked up in the same statement; a later turn
locks the call row; then one statement writes the turn's state and its timeline; then COMMIT.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, literal, select, update
from sqlalchemy.orm import Session

from app.calls.models import Call, CallEvent
from app.clients.models import Client, PhoneNumber
from app.db import insert_for
from app.messages.queries import CallStory, call_id_of, message_detail
from app.messages.schemas import MessageDetail, TimelineEntry
from app.messages.service import recording_fields
from app.timeutil import as_utc

CALLS = Call.metadata.tables[Call.__tablename__]
EVENTS = CallEvent.metadata.tables[CallEvent.__tablename__]


def lock_call(session: Session, sid: str) -> Row[Any] | None:
    """What a turn needs of the call, its row locked until the transaction ends (on SQLite the
    transaction holds the write lock already)."""
    return session.execute(
        select(
            CALLS.c.id, CALLS.c.sid, CALLS.c.client_id, CALLS.c.caller, CALLS.c.flow_version_id,
            CALLS.c.turn, CALLS.c.state, CALLS.c.last_twiml, CALLS.c.ended_at,
        )
        .where(CALLS.c.sid == sid)
        .with_for_update()
    ).first()  # fmt: skip


def insert_call_for_number(
    session: Session, sid: str, caller: str, called: str, now: dt.datetime
) -> Row[Any] | None:
    """A new call to a client's number, in one statement: None when the number is no client's
    (or has no flow yet), or when the call is already there (Twilio repeated its request)."""
    client = (
        select(
            literal(sid).label("sid"), Client.id.label("client_id"),
            Client.active_flow_id.label("flow_version_id"), literal(caller).label("caller"),
            literal(called).label("called"), literal({}, CALLS.c.state.type).label("state"),
            literal(now, CALLS.c.started_at.type).label("started_at"),
        )
        .join(PhoneNumber, PhoneNumber.client_id == Client.id)
        .where(PhoneNumber.number == called, Client.active_flow_id.is_not(None))
    )  # fmt: skip
    columns = ["sid", "client_id", "flow_version_id", "caller", "called", "state", "started_at"]
    statement = (
        insert_for(session)(CALLS)
        .from_select(columns, client)
        .on_conflict_do_nothing(index_elements=["sid"])
        .returning(CALLS.c.id, CALLS.c.client_id, CALLS.c.flow_version_id, CALLS.c.turn)
    )
    return session.execute(statement).first()


def save_turn(
    session: Session,
    call_id: int,
    turn: int,
    state: dict[str, Any],
    twiml: str,
    events: Sequence[dict[str, Any]],
) -> None:
    """The call's new state, the TwiML handed out (for repeats) and its timeline entries: one
    statement on PostgreSQL (the events' INSERT in a WITH), two on SQLite, which has no writes
    inside WITH (and no round trips to save)."""
    rows = [{"call_id": call_id, **event} for event in events]
    save = (
        update(CALLS).where(CALLS.c.id == call_id).values(turn=turn, state=state, last_twiml=twiml)
    )
    if rows and session.get_bind().dialect.name == "postgresql":
        save = save.add_cte(insert(EVENTS).values(rows).cte("timeline"))
    elif rows:
        session.execute(insert(EVENTS).values(rows))
    session.execute(save)


def end_call(
    session: Session,
    call_id: int,
    status: str,
    state: dict[str, Any],
    seconds: int | None,
    now: dt.datetime,
) -> None:
    """The call is over: its last state, and the status on its timeline."""
    session.execute(
        update(CALLS).where(CALLS.c.id == call_id).values(status=status, ended_at=now, state=state)
    )
    detail = {"status": status, "seconds": seconds}
    session.execute(
        insert(EVENTS).values(call_id=call_id, kind="call_ended", at=now, detail=detail)
    )


def attachments(session: Session, call_id: int) -> dict[str, Any]:
    """Recordings and transcriptions that reached the call before its message existed, as the
    message's fields."""
    found: dict[str, Any] = {}
    rows = session.execute(
        select(EVENTS.c.kind, EVENTS.c.detail)
        .where(EVENTS.c.call_id == call_id, EVENTS.c.kind.in_(("recording", "transcription")))
        .order_by(EVENTS.c.id)
    )
    for row in rows:
        detail: dict[str, Any] = row.detail
        if row.kind == "recording":
            found.update(recording_fields(detail))
        else:
            found["transcription"] = detail.get("text")
    return found


def message_story(session: Session, message_id: int) -> MessageDetail:
    """A message with its call's timeline and its own, in the order things happened."""
    call_id = call_id_of(session, message_id)
    call = session.get(Call, call_id) if call_id is not None else None
    story = None
    if call is not None:
        events = session.scalars(
            select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
        )
        entries = [
            TimelineEntry(at=as_utc(e.at), source="call", kind=e.kind, detail=e.detail)
            for e in events
        ]
        story = CallStory(call.sid, entries)
    return message_detail(session, message_id, story)
