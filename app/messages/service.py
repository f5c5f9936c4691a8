"""Saving messages and attaching what arrives later (recordings, transcriptions).

The call path saves a message and starts its notifications in the same transaction (the outbox),
so a message can never exist without someone being owed a notification about it, nor the
reverse. Services only add and flush; the caller's transaction commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import insert_returning
from app.flows.engine import SaveMessage
from app.messages.chain import content_digest
from app.messages.models import Message, MessageStatus, SavedMessage
from app.messages.timeline import add_event
from app.observability import MESSAGES_SAVED

log = logging.getLogger("nightdesk.messages")


class CallFacts(Protocol):
    """What saving a message needs to know of its call."""

    @property
    def id(self) -> int: ...
    @property
    def sid(self) -> str: ...
    @property
    def client_id(self) -> int | None: ...
    @property
    def caller(self) -> str: ...


def message_for_call(session: Session, call_id: int) -> Message | None:
    return session.scalars(select(Message).where(Message.call_id == call_id)).first()


def recording_held(session: Session, recording_sid: str) -> bool:
    """Whether a message already has this recording (each recording belongs to one call)."""
    held = session.scalar(select(Message.id).where(Message.recording_sid == recording_sid))
    return held is not None


def save_message(
    session: Session,
    call: CallFacts,
    save: SaveMessage,
    attachments: dict[str, Any],
    now: dt.datetime,
) -> SavedMessage | None:
    """The call's one message, with what reached the call before it (`attachments`: recording,
    transcription); None when the call has its message already (a repeat)."""
    values: dict[str, Any] = {
        "client_id": call.client_id, "call_id": call.id, "caller": call.caller,
        "answers": save.answers, "urgency": save.urgency.value, "outcome": save.outcome,
        "recording_url": save.recording_url, "recording_seconds": save.recording_seconds,
        "created_at": now, "updated_at": now,
    }  # fmt: skip
    if save.outcome == "connected":
        values.update(status=MessageStatus.acknowledged.value, acknowledged_at=now,
                      acknowledged_by="the person the caller was connected to")  # fmt: skip
    if "recording_sid" in attachments:
        attachments = {**attachments, **_recording_outcome(save.outcome)}
    values.update(attachments)
    message_id = insert_returning(session, Message, "call_id", "id", values)
    if message_id is None:
        return None
    message = SavedMessage(
        message_id, call.client_id, call.caller, save.urgency.value, values["outcome"]
    )
    content = content_digest(call.caller, save.answers, values.get("transcription"))
    add_event(session, message.id, "taken", now, outcome=values["outcome"],
              urgency=message.urgency, content=content)  # fmt: skip
    MESSAGES_SAVED.labels(outcome=values["outcome"]).inc()
    log.info(
        "message_saved",
        extra={"message_id": message_id, "call_sid": call.sid, "outcome": values["outcome"]},
    )
    return message


def recording_fields(detail: dict[str, Any]) -> dict[str, Any]:
    """A recording as a message's fields."""
    return {
        "recording_sid": detail.get("sid"),
        "recording_url": detail.get("url"),
        "recording_seconds": detail.get("seconds"),
    }


def _recording_outcome(outcome: str) -> dict[str, str]:
    """A hang-up that left a recording is a voicemail, not a partial message."""
    return {"outcome": "voicemail" if outcome == "partial" else outcome}


def attach_recording(
    session: Session, message: Message, detail: dict[str, Any], now: dt.datetime
) -> None:
    """A finished recording on a message saved before it arrived."""
    if message.recording_sid == detail.get("sid"):
        return  # a repeat
    for field, value in {**recording_fields(detail), **_recording_outcome(message.outcome)}.items():
        setattr(message, field, value)
    add_event(session, message.id, "recording", now, seconds=detail.get("seconds"))


def attach_transcription(session: Session, message: Message, text: str, now: dt.datetime) -> None:
    message.transcription = text
    content = content_digest(message.caller, message.answers, text)
    add_event(session, message.id, "transcription", now, characters=len(text), content=content)
