"""Writing what the dispatcher owes: escalation steps and texts, in the caller's transaction.

Every row has a dedupe key and goes in with insert-if-absent, so running a step twice (a retry,
a second worker) never notifies anyone twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.clients.models import Contact
from app.db import insert_if_absent
from app.dispatch.models import Delivery, DeliveryKind, Escalation
from app.dispatch.texts import caller_taken_sms, may_text_caller
from app.flows.engine import SaveMessage
from app.flows.schema import Channel, Flow, Urgency
from app.flows.understanding import is_mobile
from app.messages.models import MessageFacts, SavedMessage
from app.messages.service import CallFacts, save_message
from app.messages.timeline import add_event
from app.oncall.callbacks import callback_due
from app.oncall.escalation import Notification, Position, notifications_at, quiet_until, wait_after
from app.webhooks.events import taken_event

log = logging.getLogger("nightdesk.dispatch")
NOTIFY_CHANNEL = "nightdesk_dispatch"


def wake_dispatcher(session: Session) -> None:
    """Ask the dispatcher to look now, once this transaction commits (not before)."""
    if session.info.get("wake_dispatcher"):
        return  # once per transaction is enough
    session.info["wake_dispatcher"] = True
    if session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: workers in other processes hear it at commit.
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))


NOTIFIED_OUTCOMES = {"message", "partial", "voicemail"}  # not "connected": a person took it


def take_message(
    session: Session,
    call: CallFacts,
    flow: Flow | None,
    save: SaveMessage,
    attachments: dict[str, Any],
    now: dt.datetime,
) -> SavedMessage | None:
    """Save the call's message and, in the same transaction, owe its notifications and tell the
    caller it was taken. None when the call has its message already (a repeat does nothing)."""
    message = save_message(session, call, save, attachments, now)
    if message is not None:
        _taken_webhook(session, message, save, attachments, now)
    if message is None or flow is None or message.outcome not in NOTIFIED_OUTCOMES:
        return message
    start_escalation(session, message, flow, now)
    queue_caller_update(session, message, flow, caller_taken_sms(flow.name), "taken", now)
    return message


def _taken_webhook(
    session: Session,
    message: SavedMessage,
    save: SaveMessage,
    attachments: dict[str, Any],
    now: dt.datetime,
) -> None:
    """`message.taken` to the client's webhooks, in the transaction that saved it."""
    has_recording = save.recording_url or attachments.get("recording_url")
    seconds = attachments.get("recording_seconds", save.recording_seconds)
    taken_event(
        session, message, save.answers, attachments.get("transcription"),
        (seconds or 0) if has_recording else None, now,
    )  # fmt: skip


def start_escalation(session: Session, message: MessageFacts, flow: Flow, now: dt.datetime) -> None:
    """A new message: its escalation row, the first step's notifications, the caller's text."""
    urgency = Urgency(message.urgency)
    first = Position(0, 0)
    # Each notification's dedupe key makes this safe to repeat, so no need to look first.
    queued = queue_step(session, message, flow, urgency, first, now)
    # Nobody reachable at this step: move on straight away rather than wait for nobody.
    next_at = now + wait_after(flow.policy_for(urgency), first) if queued else now
    values = {
        "message_id": message.id,
        "urgency": urgency.value,
        "next_at": next_at,
        "callback_due_at": callback_due(flow, urgency, now),
    }
    insert_if_absent(session, Escalation, values, "message_id")
    wake_dispatcher(session)


def queue_step(
    session: Session,
    message: MessageFacts,
    flow: Flow,
    urgency: Urgency,
    position: Position,
    now: dt.datetime,
    lap: int = 0,
) -> int:
    """The notifications one policy step owes; returns how many were queued. `lap` 1: the
    policy run again because a promised call back was overdue (new notifications, not repeats
    of the first run's)."""
    contacts = _contacts(session, message.client_id)
    queued = 0
    for owed in notifications_at(flow, urgency, position, now):
        row = contacts.get(owed.contact)
        if row is None or (owed.channel is Channel.sms and row.sms_opted_out):
            continue
        contact = flow.contact(owed.contact)
        due = (quiet_until(contact, flow, urgency, now) if contact else None) or now
        if queue_notification(session, message, owed, row.id, due, now, lap):
            queued += 1
    if queued:
        wake_dispatcher(session)
    return queued


def notify_key(message_id: int, owed: Notification, lap: int = 0) -> str:
    again = f"l{lap}:" if lap else ""
    return f"m{message_id}:{again}r{owed.round}:s{owed.step}:{owed.contact}:{owed.channel.value}"


def queue_notification(
    session: Session,
    message: MessageFacts,
    owed: Notification,
    contact_id: int,
    due: dt.datetime,
    now: dt.datetime,
    lap: int | None = None,
) -> bool:
    """One notification, once. `lap` None: the lap the message's escalation is on (a failover
    from a delivery, which knows its round and step but not its lap)."""
    if lap is None:
        lap = session.scalar(select(Escalation.lap).where(Escalation.message_id == message.id))
    inserted = _insert_delivery(
        session,
        message,
        key=notify_key(message.id, owed, lap or 0),
        due=due,
        now=now,
        contact_id=contact_id,
        kind=DeliveryKind.notify.value,
        channel=owed.channel.value,
        address=owed.address,
        round=owed.round,
        step=owed.step,
        failover=owed.failover,
        lap=lap or 0,
    )
    if inserted:
        detail = {"contact": owed.contact, "channel": owed.channel.value, "step": owed.step}
        if due > now:
            detail["quiet_until"] = due.isoformat()
        add_event(session, message.id, "queued", now, **detail)
    return inserted


def queue_text(
    session: Session,
    message: MessageFacts,
    *,
    kind: DeliveryKind,
    address: str,
    body: str,
    key: str,
    now: dt.datetime,
    channel: Channel = Channel.sms,
    contact_id: int | None = None,
) -> bool:
    """A one-off text (caller updates, 'Sam has it', the fallback's warning), sent once."""
    inserted = _insert_delivery(
        session,
        message,
        key=f"m{message.id}:{key}",
        due=now,
        now=now,
        contact_id=contact_id,
        kind=kind.value,
        channel=channel.value,
        address=address,
        body=body,
    )
    if inserted:
        wake_dispatcher(session)
    return inserted


def queue_email(
    session: Session,
    *,
    kind: DeliveryKind,
    address: str,
    subject: str,
    text: str,
    html: str | None,
    key: str,
    now: dt.datetime,
    contact_id: int | None = None,
) -> bool:
    """An email about no single message (a summary, a notice), its words written now; sent once
    per `key`, however often this runs."""
    values = {
        "message_id": None,
        "dedupe_key": key,
        "due_at": now,
        "contact_id": contact_id,
        "kind": kind.value,
        "channel": Channel.email.value,
        "address": address,
        "subject": subject,
        "body": text,
        "html": html,
        "created_at": now,
        "updated_at": now,
    }
    inserted = insert_if_absent(session, Delivery, values, "dedupe_key")
    if inserted:
        wake_dispatcher(session)
    return inserted


def queue_notice(
    session: Session, address: str, subject: str, text: str, key: str, now: dt.datetime
) -> bool:
    """A plain-text email to the client about its service (a webhook paused), sent once."""
    return queue_email(
        session,
        kind=DeliveryKind.notice,
        address=address,
        subject=subject,
        text=text,
        html=None,
        key=key,
        now=now,
    )


def _insert_delivery(
    session: Session,
    message: MessageFacts,
    *,
    key: str,
    due: dt.datetime,
    now: dt.datetime,
    **fields: object,
) -> bool:
    """One outbox row, unless a row with its dedupe key is already there."""
    values = {"message_id": message.id, "dedupe_key": key, "due_at": due, **fields}
    values.update(created_at=now, updated_at=now)
    return insert_if_absent(session, Delivery, values, "dedupe_key")


def queue_caller_update(
    session: Session, message: MessageFacts, flow: Flow, body: str, key: str, now: dt.datetime
) -> None:
    """Keep the caller informed, if the client wants it and the caller has a mobile."""
    if flow.caller_updates and may_text_caller(message.caller) and is_mobile(message.caller):
        queue_text(
            session,
            message,
            kind=DeliveryKind.caller_update,
            address=message.caller,
            body=body,
            key=f"caller:{key}",
            now=now,
        )


@dataclass(frozen=True)
class _Reachable:
    id: int
    sms_opted_out: bool


def _contacts(session: Session, client_id: int | None) -> dict[str, _Reachable]:
    """The client's active contacts by their key in the flow file."""
    if client_id is None:
        return {}
    rows = session.execute(_ACTIVE_CONTACTS, {"client": client_id})
    return {key: _Reachable(contact_id, bool(opted_out)) for key, contact_id, opted_out in rows}


_ACTIVE_CONTACTS = select(Contact.key, Contact.id, Contact.sms_opted_out).where(
    Contact.client_id == bindparam("client"), Contact.active.is_(True)
)  # built once: every message saved asks
