"""The voice turns' statements: SQLAlchemy Core on the calls table, a few a turn.

Voice turns are nearly all of the service's traffic, so each costs few round trips on
PostgreSQL: a new call is inserted with its client looked up in the same statement; a later turn
locks the call row; then one statement writes the turn's state and its timeline; then COMMIT.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    DateTime,
    Executable,
    Row,
    String,
    bindparam,
    column,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.calls.models import Call, CallEvent
from app.clients.models import Client, PhoneNumber
from app.messages.queries import CallStory, call_id_of, message_detail
from app.messages.schemas import MessageDetail, TimelineEntry
from app.messages.service import recording_fields
from app.timeutil import as_utc

CALLS = Call.metadata.tables[Call.__tablename__]
EVENTS = CallEvent.metadata.tables[CallEvent.__tablename__]


def lock_call(session: Session, sid: str) -> Row[Any] | None:
    """What a turn needs of the call, its row locked until the transaction ends (on SQLite the
    transaction holds the write lock already)."""
    return session.execute(_LOCK_CALL, {"sid": sid}).first()


# The hot statements below are built once and run with parameters: building a statement (and
# its key for SQLAlchemy's compiled cache) costs more than running it.
_LOCK_CALL = (
    select(
        CALLS.c.id, CALLS.c.sid, CALLS.c.client_id, CALLS.c.caller, CALLS.c.flow_version_id,
        CALLS.c.turn, CALLS.c.state, CALLS.c.last_twiml, CALLS.c.ended_at,
    )
    .where(CALLS.c.sid == bindparam("sid"))
    .with_for_update()
)  # fmt: skip


def insert_call_for_number(
    session: Session, sid: str, caller: str, called: str, now: dt.datetime
) -> Row[Any] | None:
    """A new call to a client's number, in one statement: None when the number is no client's
    (or has no flow yet), or when the call is already there (Twilio repeated its request)."""
    params = {"sid": sid, "caller": caller, "called": called, "now": now}
    return session.execute(_insert_call(session.get_bind().dialect.name), params).first()


@cache
def _insert_call(dialect: str) -> Executable:
    """Built once: constructing a statement costs more than running it."""
    client = (
        select(
            bindparam("sid"), Client.id, Client.active_flow_id, bindparam("caller"),
            bindparam("called"), literal({}, CALLS.c.state.type),
            bindparam("now", type_=CALLS.c.started_at.type),
        )
        .join(PhoneNumber, PhoneNumber.client_id == Client.id)
        .where(PhoneNumber.number == bindparam("called"), Client.active_flow_id.is_not(None))
    )  # fmt: skip
    columns = ["sid", "client_id", "flow_version_id", "caller", "called", "state", "started_at"]
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(CALLS)
        .from_select(columns, client)
        .on_conflict_do_nothing(index_elements=["sid"])
        .returning(CALLS.c.id, CALLS.c.client_id, CALLS.c.flow_version_id, CALLS.c.turn)
    )


def save_turn(
    session: Session,
    call_id: int,
    turn: int,
    state: dict[str, Any],
    twiml: str,
    events: Sequence[dict[str, Any]],
) -> None:
    """The call's new state, the TwiML handed out (for repeats) and its timeline entries: one
    statement on PostgreSQL (the timeline's INSERT in a WITH, its rows one JSON parameter), two
    on SQLite, which has no writes inside WITH (and no round trips to save)."""
    params: dict[str, Any] = {"call": call_id, "new_turn": turn, "new_state": state, "twiml": twiml}
    if session.get_bind().dialect.name == "postgresql":
        rows = [{**event, "at": event["at"].isoformat()} for event in events]
        session.execute(_SAVE_TURN_AND_TIMELINE if rows else _SAVE_TURN, {**params, "rows": rows})
        return
    if events:
        session.execute(_ADD_EVENTS, [{"call_id": call_id, **event} for event in events])
    session.execute(_SAVE_TURN, params)


_ADD_EVENTS = insert(EVENTS)


_SAVE_TURN = (
    update(CALLS)
    .where(CALLS.c.id == bindparam("call"))
    .values(turn=bindparam("new_turn"), state=bindparam("new_state"), last_twiml=bindparam("twiml"))
)
_TIMELINE_ROWS = (
    func.jsonb_to_recordset(bindparam("rows", type_=JSONB))
    .table_valued(
        column("kind", String), column("at", DateTime(timezone=True)), column("detail", JSONB)
    )
    .render_derived("row", with_types=True)
)
_SAVE_TURN_AND_TIMELINE = _SAVE_TURN.add_cte(
    insert(EVENTS)
    .from_select(
        ["call_id", "kind", "at", "detail"],
        select(
            bindparam("call"), _TIMELINE_ROWS.c.kind, _TIMELINE_ROWS.c.at, _TIMELINE_ROWS.c.detail
        ),
    )
    .cte("timeline")
)


def end_call(
    session: Session,
    call_id: int,
    status: str,
    state: dict[str, Any],
    seconds: int | None,
    now: dt.datetime,
) -> None:
    """The call is over: its last state, and the status on its timeline."""
    ended = {"call": call_id, "status": status, "ended_at": now, "state": state}
    session.execute(_END_CALL, ended)
    detail = {"status": status, "seconds": seconds}
    event = {"call_id": call_id, "kind": "call_ended", "at": now, "detail": detail}
    session.execute(_ADD_EVENTS, event)


_END_CALL = (
    update(CALLS)
    .where(CALLS.c.id == bindparam("call"))
    .values(status=bindparam("status"), ended_at=bindparam("ended_at"), state=bindparam("state"))
)


def attachments(session: Session, call_id: int) -> dict[str, Any]:
    """Recordings and transcriptions that reached the call before its message existed, as the
    message's fields."""
    found: dict[str, Any] = {}
    rows = session.execute(_ATTACHMENTS, {"call": call_id})
    for row in rows:
        detail: dict[str, Any] = row.detail
        if row.kind == "recording":
            found.update(recording_fields(detail))
        else:
            found["transcription"] = detail.get("text")
    return found


_ATTACHMENTS = (
    select(EVENTS.c.kind, EVENTS.c.detail)
    .where(EVENTS.c.call_id == bindparam("call"), EVENTS.c.kind.in_(("recording", "transcription")))
    .order_by(EVENTS.c.id)
)


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
