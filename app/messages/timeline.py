"""A message's timeline: one row per thing that happened to it, in the caller's transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.messages.models import MessageEvent
from app.prepared import Prepared

_ADD_EVENT = Prepared(insert(MessageEvent.metadata.tables[MessageEvent.__tablename__]))


def add_event(session: Session, message_id: int, kind: str, at: dt.datetime, **detail: Any) -> None:
    """Written at once (after anything the session has pending), so the timeline keeps order."""
    values = {"message_id": message_id, "kind": kind, "at": at, "detail": detail}
    _ADD_EVENT.execute(session, values)
