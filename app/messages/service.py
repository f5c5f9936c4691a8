"""Saving messages and attaching what arrives later (recordings, transcriptions).

Saving a message starts its escalation in the same transaction (the outbox), so a message can
never exist without someone being owed a notification about it, nor the reverse.
Services only add and flush; the caller's transaction commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calls.models import Call, CallEvent
from app.dispatch import outbox, texts
from app.flows.engine import SaveMessage
from app.flows.schema import Flow
from app.messages.models import Message, MessageEvent, MessageStatus
from app.observability import MESSAGES_SAVED

log = logging.getLogger("nightdesk.messages")

NOTIFIED_OUTCOMES = {"message", "partial", "voicemail"}


def message_for_call(session: Session, call: Call) -> Message | None:
    return session.scalars(select(Message).where(Message.call_id == call.id)).first()


def save_message(
    session: Session, call: Call, flow: Flow | None, save: SaveMessage, now: dt.datetime
) -> Message:
    """The call's one message (a repeat returns the first), with its outbox rows."""
    existing = message_for_call(session, call)
    if existing is not None:
        return existing
    message = Message(
        client_id=call.client_id,
        call_id=call.id,
        caller=call.caller,
        answers=save.answers,
        urgency=save.urgency.value,
        outcome=save.outcome,
        recording_url=save.recording_url,
        recording_seconds=save.recording_seconds,
        created_at=now,
        updated_at=now,
    )
    if save.outcome == "connected":
        message.status = MessageStatus.acknowledged
        message.acknowledged_at = now
        message.acknowledged_by = "the person the caller was connected to"
    session.add(message)
    session.flush()
    # The timeline events below go in together at the end, not one INSERT per query in between.
    with session.no_autoflush:
        _pick_up_attachments(session, call, message)
        add_event(session, message, "taken", now, outcome=save.outcome, urgency=save.urgency.value)
        if flow is not None and save.outcome in NOTIFIED_OUTCOMES:
            outbox.start_escalation(session, message, flow, now)
            outbox.queue_caller_update(
                session, message, flow, texts.caller_taken_sms(flow.name), "taken", now
            )
    MESSAGES_SAVED.labels(outcome=save.outcome).inc()
    log.info(
        "message_saved",
        extra={"message_id": message.id, "call_sid": call.sid, "outcome": save.outcome},
    )
    return message


def _pick_up_attachments(session: Session, call: Call, message: Message) -> None:
    """Recordings and transcriptions that reached the call before its message existed."""
    events = session.scalars(
        select(CallEvent)
        .where(CallEvent.call_id == call.id, CallEvent.kind.in_(("recording", "transcription")))
        .order_by(CallEvent.id)
    )
    for event in events:
        if event.kind == "recording":
            _set_recording(message, event.detail)
        else:
            message.transcription = event.detail.get("text")


def _set_recording(message: Message, detail: dict[str, Any]) -> None:
    message.recording_sid = detail.get("sid")
    message.recording_url = detail.get("url")
    message.recording_seconds = detail.get("seconds")
    if message.outcome == "partial":
        message.outcome = "voicemail"


def attach_recording(
    session: Session, call: Call, message: Message | None, detail: dict[str, Any], now: dt.datetime
) -> None:
    """Keep a finished recording on the call, and on its message if there is one yet."""
    session.add(CallEvent(call_id=call.id, kind="recording", detail=detail, at=now))
    if message is not None and message.recording_sid != detail.get("sid"):
        _set_recording(message, detail)
        add_event(session, message, "recording", now, seconds=detail.get("seconds"))


def attach_transcription(
    session: Session, call: Call, message: Message | None, text: str, now: dt.datetime
) -> None:
    session.add(CallEvent(call_id=call.id, kind="transcription", detail={"text": text}, at=now))
    if message is not None:
        message.transcription = text
        add_event(session, message, "transcription", now, characters=len(text))


def add_event(
    session: Session, message: Message, kind: str, at: dt.datetime, **detail: Any
) -> None:
    session.add(MessageEvent(message_id=message.id, kind=kind, at=at, detail=detail))
