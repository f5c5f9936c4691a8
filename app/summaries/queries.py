"""Reading what summaries need: where each client's last summary ended, and a period's messages
with whom each was sent to and who took it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clients.models import Client, Contact
from app.dispatch.models import Delivery, DeliveryKind, DeliveryStatus
from app.dispatch.texts import MessageSummary
from app.messages.models import Message, message_ref
from app.summaries.digest import Entry
from app.summaries.models import Summary
from app.summaries.schedule import Period
from app.timeutil import as_utc

REACHED = (DeliveryStatus.sent, DeliveryStatus.delivered)


@dataclass(frozen=True)
class ClientSummaries:
    """A client with a flow, and where its last summary ended (None: it has had none)."""

    id: int
    slug: str
    name: str
    flow_version_id: int
    last_period_end: dt.datetime | None


def clients_and_last_ends(session: Session, slug: str | None = None) -> list[ClientSummaries]:
    """Every client with a flow (or the one called `slug`), in one query."""
    last = (
        select(Summary.client_id, func.max(Summary.period_end).label("last_end"))
        .group_by(Summary.client_id)
        .subquery()
    )
    query = (
        select(Client.id, Client.slug, Client.name, Client.active_flow_id, last.c.last_end)
        .outerjoin(last, last.c.client_id == Client.id)
        .where(Client.active_flow_id.is_not(None))
        .order_by(Client.slug)
    )
    if slug is not None:
        query = query.where(Client.slug == slug)
    return [
        ClientSummaries(
            row.id,
            row.slug,
            row.name,
            row.active_flow_id,
            as_utc(row.last_end) if row.last_end else None,
        )
        for row in session.execute(query)
    ]


def period_entries(
    session: Session, client_id: int, client_name: str, period: Period, portal: str
) -> list[Entry]:
    """The client's messages taken in the period, in the order they came, each with the
    contacts it reached and who took it; `portal` is the base of the links to each."""
    messages = session.scalars(
        select(Message)
        .where(
            Message.client_id == client_id,
            Message.created_at >= period.start,
            Message.created_at < period.end,
        )
        .order_by(Message.created_at, Message.id)
    ).all()
    reached: dict[int, dict[str, list[str]]] = {}
    rows = session.execute(
        select(Delivery.message_id, Contact.name, Delivery.channel)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(
            Delivery.message_id.in_([m.id for m in messages]),
            Delivery.kind == DeliveryKind.notify,
            Delivery.status.in_(REACHED),
        )
        .order_by(Delivery.id)
    )
    for message_id, name, channel in rows:
        assert message_id is not None  # chosen by message above
        channels = reached.setdefault(message_id, {}).setdefault(name, [])
        if channel not in channels:
            channels.append(channel)
    return [_entry(m, client_name, reached.get(m.id, {}), portal) for m in messages]


def _entry(message: Message, client: str, reached: dict[str, list[str]], portal: str) -> Entry:
    facts = MessageSummary.of(message, client)
    return Entry(
        id=message.id,
        ref=message_ref(message.id),
        at=as_utc(message.created_at),
        caller=message.caller,
        caller_name=facts.caller_name,
        callback=facts.callback,
        urgency=message.urgency,
        outcome=message.outcome,
        status=message.status,
        answers={k: v for k, v in message.answers.items() if k not in _NAME_KEYS},
        transcription=message.transcription,
        notified=[(name, channels) for name, channels in reached.items()],
        acknowledged_by=message.acknowledged_by,
        acknowledged_at=as_utc(message.acknowledged_at) if message.acknowledged_at else None,
        link=f"{portal}/portal/messages/{message.id}",
        called_back_by=message.called_back_by,
        called_back_at=as_utc(message.called_back_at) if message.called_back_at else None,
    )


# Shown as the caller's name already (MessageSummary.caller_name), so not again among answers.
_NAME_KEYS = ("name", "patient_name", "caller_name", "full_name")


def email_states(session: Session, keys: Sequence[str]) -> Counter[str]:
    """How many of these deliveries (by dedupe key) are sent, pending, failed…"""
    rows = session.scalars(select(Delivery.status).where(Delivery.dedupe_key.in_(keys)))
    return Counter(rows)
