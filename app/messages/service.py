"""Saving messages and attaching what arrives later (recordings, transcriptions).

Saving a message starts its escalation in the same transaction (the outbox), so a message can
never exist without someone being owed a notification about it, nor the reverse.
Services only add and flush; the caller's transaction commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from app.calls.models import Call, CallEvent
from app.db import insert_ignoring
from app.dispatch import outbox, texts
from app.flows.engine import SaveMessage
from app.flows.schema import Flow
from app.messages.models import Message, MessageStatus, SavedMessage
from app.messages.timeline import add_event
from app.observability import MESSAGES_SAVED
from app.prepared import Prepared

log = logging.getLogger("nightdesk.messages")

NOTIFIED_OUTCOMES = {"message", "partial", "voicemail"}


class CallFacts(Protocol):
    """What saving a message needs to know of its call: an ORM Call or the call path's row."""

    @property
    def id(self) -> int: ...
    @property
    def sid(self) -> str: ...
    @property
    def client_id(self) -> int | None: ...
    @property
    def caller(self) -> str: ...


def message_for_call(session: Session, call: Call) -> Message | None:
    return session.scalars(select(Message).where(Message.call_id == call.id)).first()


def save_message(
    session: Session, call: CallFacts, flow: Flow | None, save: SaveMessage, now: dt.datetime
) -> SavedMessage:
    """The call's one message (a repeat returns the first), with its outbox rows.

    Prepared statements throughout: this runs on the last turn of nearly every call.
    """
    values: dict[str, Any] = {
        "client_id": call.client_id, "call_id": call.id, "caller": call.caller,
        "answers": save.answers, "urgency": save.urgency.value, "outcome": save.outcome,
        "recording_url": save.recording_url, "recording_seconds": save.recording_seconds,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    if save.outcome == "connected":
        values.update(status=MessageStatus.acknowledged.value, acknowledged_at=now,
                      acknowledged_by="the person the caller was connected to")  # fmt: skip
    values.update(_attachments(session, call, save.outcome))
    message_id = _INSERT_MESSAGE.scalar(session, values)
    if message_id is None:  # a repeat: the call already has its message
        row = _MESSAGE_FOR_CALL.first(session, {"call_id": call.id})
        assert row is not None
        return SavedMessage(*row)
    message = SavedMessage(message_id, call.client_id, call.caller, save.urgency.value)
    add_event(session, message.id, "taken", now, outcome=values["outcome"], urgency=message.urgency)
    if flow is not None and save.outcome in NOTIFIED_OUTCOMES:
        outbox.start_escalation(session, message, flow, now)
        outbox.queue_caller_update(
            session, message, flow, texts.caller_taken_sms(flow.name), "taken", now
        )
    MESSAGES_SAVED.labels(outcome=values["outcome"]).inc()
    log.info(
        "message_saved",
        extra={"message_id": message_id, "call_sid": call.sid, "outcome": values["outcome"]},
    )
    return message


def _attachments(session: Session, call: CallFacts, outcome: str) -> dict[str, Any]:
    """Recordings and transcriptions that reached the call before its message existed."""
    found: dict[str, Any] = {}
    for kind, detail in _CALL_EVENTS.all(session, {"call_id": call.id}):
        if kind == "recording":
            found.update(_recording_fields(detail, outcome))
        elif kind == "transcription":
            found["transcription"] = detail.get("text")
    return found


def _recording_fields(detail: dict[str, Any], outcome: str) -> dict[str, Any]:
    """A recording on a message; a hang-up that left one is a voicemail, not a partial."""
    return {
        "recording_sid": detail.get("sid"),
        "recording_url": detail.get("url"),
        "recording_seconds": detail.get("seconds"),
        "outcome": "voicemail" if outcome == "partial" else outcome,
    }


def _set_recording(message: Message, detail: dict[str, Any]) -> None:
    for field, value in _recording_fields(detail, message.outcome).items():
        setattr(message, field, value)


def attach_recording(
    session: Session, call: Call, message: Message | None, detail: dict[str, Any], now: dt.datetime
) -> None:
    """Keep a finished recording on the call, and on its message if there is one yet."""
    session.add(CallEvent(call_id=call.id, kind="recording", detail=detail, at=now))
    if message is not None and message.recording_sid != detail.get("sid"):
        _set_recording(message, detail)
        add_event(session, message.id, "recording", now, seconds=detail.get("seconds"))


def attach_transcription(
    session: Session, call: Call, message: Message | None, text: str, now: dt.datetime
) -> None:
    session.add(CallEvent(call_id=call.id, kind="transcription", detail={"text": text}, at=now))
    if message is not None:
        message.transcription = text
        add_event(session, message.id, "transcription", now, characters=len(text))


MESSAGES = Message.metadata.tables[Message.__tablename__]
CALL_EVENTS = CallEvent.metadata.tables[CallEvent.__tablename__]
_INSERT_MESSAGE = Prepared(insert_ignoring(MESSAGES, "call_id", returning="id"))
_MESSAGE_FOR_CALL = Prepared(
    select(MESSAGES.c.id, MESSAGES.c.client_id, MESSAGES.c.caller, MESSAGES.c.urgency).where(
        MESSAGES.c.call_id == bindparam("call_id")
    )
)
_CALL_EVENTS = Prepared(
    select(CALL_EVENTS.c.kind, CALL_EVENTS.c.detail)
    .where(
        CALL_EVENTS.c.call_id == bindparam("call_id"),
        # Not the rest of the timeline: a call has a dozen events, each with JSON to decode.
        or_(CALL_EVENTS.c.kind == "recording", CALL_EVENTS.c.kind == "transcription"),
    )
    .order_by(CALL_EVENTS.c.id)
)
