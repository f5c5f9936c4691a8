"""Acknowledging a message: the first acknowledger wins, and escalation stops on every channel.

Every route ends here: an SMS reply, a keypress on the notification call, the signed email link,
the console, the portal, `nightdesk messages ack`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.clients.models import Client, Contact
from app.dispatch import outbox, texts
from app.dispatch.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Escalation,
    EscalationState,
)
from app.messages.models import Message, MessageStatus, message_ref
from app.messages.queries import MessageNotFoundError
from app.messages.timeline import add_event
from app.webhooks.events import message_event

log = logging.getLogger("nightdesk.dispatch")
DONE = (MessageStatus.acknowledged, MessageStatus.closed)


@dataclass(frozen=True)
class Acknowledgement:
    message_id: int
    ref: str
    first: bool  # False: someone had already acknowledged it
    by: str  # who has it (the first acknowledger)


def acknowledge(
    session: Session,
    flows: FlowStore,
    message_id: int,
    *,
    by: str,
    via: str,
    now: dt.datetime,
    contact: Contact | None = None,
    told_as: str | None = None,
) -> Acknowledgement:
    """Mark the message as someone's; stop its escalation; tell the others and the caller
    (who hear `told_as`, when `by` is not a person's name: an API key)."""
    message = session.get(Message, message_id, with_for_update=True)
    if message is None:
        raise MessageNotFoundError(f"no message {message_id}")
    ref = message_ref(message.id)
    if message.status in DONE:
        return Acknowledgement(
            message.id, ref, first=False, by=message.acknowledged_by or "someone"
        )
    message.status = MessageStatus.acknowledged
    message.acknowledged_at = now
    message.acknowledged_by = by
    session.execute(
        update(Escalation)
        .where(Escalation.message_id == message.id)
        .values(state=EscalationState.acknowledged, next_at=None)
    )
    cancelled = session.execute(  # type: ignore[attr-defined]
        update(Delivery)
        .where(
            Delivery.message_id == message.id,
            Delivery.kind.in_((DeliveryKind.notify, DeliveryKind.fallback)),
            Delivery.status == DeliveryStatus.pending,
        )
        .values(status=DeliveryStatus.cancelled)
    ).rowcount
    add_event(session, message.id, "acknowledged", now, by=by, via=via, cancelled=cancelled)
    _tell_the_others(session, flows, message, ref, told_as or by, contact, now)
    # Escalated again (an overdue call back), it is acknowledged again: a second event.
    lap = session.scalar(select(Escalation.lap).where(Escalation.message_id == message.id))
    message_event(session, message, "message.acknowledged", now, key=f"lap{lap}" if lap else None)
    log.info("message_acknowledged", extra={"message_id": message.id, "via": via})
    return Acknowledgement(message.id, ref, first=True, by=by)


def record_called_back(
    session: Session,
    message: Message,
    *,
    by: str,
    via: str,
    now: dt.datetime,
    note: str | None = None,
    kind: str = "called_back",
    **detail: object,
) -> None:
    """Someone called the caller back: on the timeline (each time), on the message (the first
    time: who and when), and owed to the client's webhooks. A promised call back's deadline
    is then met, so it never re-escalates."""
    if message.called_back_at is None:
        message.called_back_at, message.called_back_by = now, by
    add_event(session, message.id, kind, now, by=by, via=via, note=note, **detail)
    message_event(session, message, "message.called_back", now, key=f"{now:%Y%m%dT%H%M%S%f}")


def _tell_the_others(
    session: Session,
    flows: FlowStore,
    message: Message,
    ref: str,
    by: str,
    acknowledger: Contact | None,
    now: dt.datetime,
) -> None:
    client = session.get(Client, message.client_id) if message.client_id else None
    if client is None or client.active_flow_id is None:
        return
    flow = flows.get(session, client.active_flow_id)
    notified = session.scalars(
        select(Contact)
        .join(Delivery, Delivery.contact_id == Contact.id)
        .where(
            Delivery.message_id == message.id,
            Delivery.kind == DeliveryKind.notify,
            Delivery.status.in_((DeliveryStatus.sent, DeliveryStatus.delivered)),
        )
        .distinct()
    )
    for other in notified:
        if acknowledger is not None and other.id == acknowledger.id:
            continue
        if other.phone and not other.sms_opted_out:
            outbox.queue_text(
                session,
                message,
                kind=DeliveryKind.info,
                address=other.phone,
                body=texts.taken_by_other_sms(flow.name, ref, by),
                key=f"taken:{other.id}",
                now=now,
                contact_id=other.id,
            )
    outbox.queue_caller_update(
        session, message, flow, texts.caller_acknowledged_sms(flow.name, by), "acknowledged", now
    )
