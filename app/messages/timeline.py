"""A message's timeline: one row per thing that happened to it, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.messages.models import MessageEvent

MESSAGE_EVENTS = MessageEvent.metadata.tables[MessageEvent.__tablename__]


def add_event(session: Session, message_id: int, kind: str, at: dt.datetime, **detail: Any) -> None:
    """Written at once (after anything the session has pending), so the timeline keeps order."""
    session.flush()  # what is pending goes first: the timeline keeps the order things happened
    values = {"message_id": message_id, "kind": kind, "at": at, "detail": detail}
    session.execute(insert(MESSAGE_EVENTS).values(values))
