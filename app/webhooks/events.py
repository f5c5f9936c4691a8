"""Owing an event to each of a client's webhook endpoints, in the transaction of the change it
reports: a message saved owes `message.taken`, an acknowledgement `message.acknowledged`.

The body follows the Standard Webhooks shape: `{"type", "timestamp", "data"}`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clients.models import Client
from app.db import insert_if_absent
from app.messages.models import Message
from app.timeutil import as_utc
from app.webhooks.models import WebhookDelivery, WebhookEndpoint


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
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events, Client.slug)
        .join(Client, Client.id == WebhookEndpoint.client_id)
        .where(WebhookEndpoint.client_id == client_id)
    ).all()
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


def message_data(
    *,
    message_id: int,
    caller: str,
    urgency: str,
    outcome: str,
    status: str,
    answers: Mapping[str, Any],
    transcription: str | None,
    created_at: dt.datetime,
    acknowledged_by: str | None = None,
    acknowledged_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A message as an event's `data`: the fields the API's messages have."""
    return {
        "id": message_id,
        "caller": caller,
        "urgency": urgency,
        "outcome": outcome,
        "status": status,
        "answers": dict(answers),
        "transcription": transcription,
        "created_at": _iso(created_at),
        "acknowledged_by": acknowledged_by,
        "acknowledged_at": _iso(acknowledged_at) if acknowledged_at else None,
    }


def message_event(session: Session, message: Message, event_type: str, now: dt.datetime) -> int:
    """Owe an event about a stored message (acknowledged, called back, closed)."""
    data = message_data(
        message_id=message.id,
        caller=message.caller,
        urgency=message.urgency,
        outcome=message.outcome,
        status=message.status,
        answers=message.answers,
        transcription=message.transcription,
        created_at=as_utc(message.created_at),
        acknowledged_by=message.acknowledged_by,
        acknowledged_at=message.acknowledged_at,
    )
    name = event_type.removeprefix("message.")
    return record_event(session, message.client_id, event_type, data, f"m{message.id}:{name}", now)


def _iso(at: dt.datetime) -> str:
    return as_utc(at).isoformat().replace("+00:00", "Z")
