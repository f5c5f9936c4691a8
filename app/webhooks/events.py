"""Owing an event to each of a client's webhook endpoints, in the transaction of the change it
reports: a message saved owes `message.taken`, an acknowledgement `message.acknowledged`, a
call back recorded `message.called_back`, closing it `message.closed`. Each event's `data` is
the message as the API shows it (`message_out`): one outside shape, with no Twilio URL in it.

The body follows the Standard Webhooks shape: `{"type", "timestamp", "data"}`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.clients.models import Client
from app.db import insert_if_absent
from app.messages.models import Message, SavedMessage
from app.messages.queries import message_out, recording_path
from app.messages.schemas import MessageOut
from app.timeutil import as_utc
from app.webhooks.models import WebhookDelivery, WebhookEndpoint

# Built once (every message saved asks): building a statement costs more than running it.
_CLIENT_ENDPOINTS = (
    select(WebhookEndpoint.id, WebhookEndpoint.events, Client.slug)
    .join(Client, Client.id == WebhookEndpoint.client_id)
    .where(WebhookEndpoint.client_id == bindparam("client"))
)


def record_event(
    session: Session,
    client_id: int | None,
    event_type: str,
    data: Mapping[str, Any],
    key: str,
    now: dt.datetime,
) -> int:
    """Owe the event to every endpoint of the client that wants it; returns how many. `key`
    names what happened ("m12:acknowledged"): recording it twice owes it once."""
    if client_id is None:
        return 0
    endpoints = session.execute(_CLIENT_ENDPOINTS, {"client": client_id}).all()
    wanted = [(e.id, e.slug) for e in endpoints if not e.events or event_type in e.events]
    if not wanted:
        return 0
    body = json.dumps(
        {
            "type": event_type,
            "timestamp": _iso(now),
            "data": {**data, "client": wanted[0][1]},
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    event_id = f"msg_{uuid.uuid4().hex}"
    owed = 0
    for endpoint_id, _slug in wanted:
        values = {
            "endpoint_id": endpoint_id,
            "dedupe_key": f"{key}:e{endpoint_id}",
            "event_id": event_id,
            "event_type": event_type,
            "body": body,
            "due_at": now,
            "created_at": now,
        }
        owed += insert_if_absent(session, WebhookDelivery, values, "dedupe_key")
    return owed


def message_event(
    session: Session, message: Message, event_type: str, now: dt.datetime, key: str | None = None
) -> int:
    """Owe an event about a stored message (acknowledged, called back, closed), its `data` the
    shape the API gives the message. `key` tells repeats of the same kind apart (each call back
    recorded is an event); by default the kind happens once per message."""
    data = message_out(message, None).model_dump(mode="json")
    name = event_type.removeprefix("message.")
    what = f"m{message.id}:{name}" + (f":{key}" if key else "")
    return record_event(session, message.client_id, event_type, data, what, now)


def taken_event(
    session: Session,
    message: SavedMessage,
    answers: Mapping[str, Any],
    transcription: str | None,
    recording_seconds: int | None,
    now: dt.datetime,
) -> int:
    """Owe `message.taken` for a message just inserted (not loaded back: this is a voice
    turn's hot path), shaped as `message_out` would shape its row."""
    connected = message.outcome == "connected"  # a person took the call: saved acknowledged
    data = MessageOut(
        id=message.id,
        client=None,
        caller=message.caller,
        urgency=message.urgency,
        outcome=message.outcome,
        status="acknowledged" if connected else "new",
        answers=dict(answers),
        transcription=transcription,
        recording_url=recording_path(message.id) if recording_seconds is not None else None,
        recording_seconds=recording_seconds,
        created_at=now,
        acknowledged_at=now if connected else None,
        acknowledged_by=None,
    ).model_dump(mode="json")
    key = f"m{message.id}:taken"
    return record_event(session, message.client_id, "message.taken", data, key, now)


def _iso(at: dt.datetime) -> str:
    return as_utc(at).isoformat().replace("+00:00", "Z")
