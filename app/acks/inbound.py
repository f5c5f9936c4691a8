"""What comes back from a contact: an SMS reply, and the acknowledge link in an email.

Each function runs in the request's transaction and is safe to repeat: a reply Twilio sends
again finds its `ProviderEvent` already stored and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.acks.replies import Reply, ReplyKind, parse_reply
from app.acks.service import DONE, acknowledge
from app.acks.webhooks import SmsReceived
from app.clients.flows import FlowStore
from app.clients.models import Client, Contact
from app.dispatch import texts
from app.dispatch.links import Links
from app.dispatch.models import Delivery, DeliveryKind, DeliveryStatus
from app.dispatch.status import first_time
from app.flows.schema import Channel
from app.messages.models import Message, MessageStatus, message_ref, ref_to_id
from app.messages.queries import MessageNotFoundError
from app.messages.timeline import add_event
from app.observability import mask_number

log = logging.getLogger("nightdesk.dispatch")

OPEN_MESSAGE = (MessageStatus.new, MessageStatus.notified, MessageStatus.unacknowledged)
# Deliveries that told a contact about a message and asked them to take it.
ASKING = (DeliveryKind.notify, DeliveryKind.fallback)
REACHED = (DeliveryStatus.sent, DeliveryStatus.delivered)
EMAIL_READER = "someone reading the email"


# --- where a message stands for the person asking -------------------------------------------


class Verdict(StrEnum):
    open = "open"
    yours = "yours"
    taken = "taken"  # by someone else
    closed = "closed"
    expired = "expired"  # asked through an acknowledge link that has run out


@dataclass(frozen=True)
class Standing:
    client: str
    ref: str
    verdict: Verdict
    holder: str | None = None  # who has it, when someone does


def standing_of(message: Message, client: str, asker: str) -> Standing:
    """Whether the message is open, the asker's, someone else's, or closed. Pure."""
    ref = message_ref(message.id)
    holder = message.acknowledged_by
    if message.status == MessageStatus.closed:
        return Standing(client, ref, Verdict.closed, holder)
    if message.status == MessageStatus.acknowledged:
        mine = holder == asker
        return Standing(client, ref, Verdict.yours if mine else Verdict.taken, holder or "Someone")
    return Standing(client, ref, Verdict.open)


def take(
    session: Session,
    flows: FlowStore,
    message_id: int,
    *,
    by: str,
    via: str,
    contact: Contact | None,
    now: dt.datetime,
) -> Standing:
    """Acknowledge the message for `by` unless it is already settled; say where it now stands."""
    message = session.get(Message, message_id, with_for_update=True)
    if message is None:
        raise MessageNotFoundError(f"no message {message_id}")
    if message.status not in DONE:
        acknowledge(session, flows, message.id, by=by, via=via, now=now, contact=contact)
    return standing_of(message, _client_name(session, message.client_id), by)


def _client_name(session: Session, client_id: int | None) -> str:
    client = session.get(Client, client_id) if client_id is not None else None
    return client.name if client else "Nightdesk"


# --- SMS replies ------------------------------------------------------------------------------


def answer_sms(
    session: Session, flows: FlowStore, sms: SmsReceived, now: dt.datetime
) -> str | None:
    """Act on a text to one of our numbers; returns the text to send back (None: send nothing)."""
    if not first_time(session, f"{sms.sid}:received"):
        return None  # a repeat: the first request already acted and answered
    reply = parse_reply(sms.body)
    contacts = list(session.scalars(select(Contact).where(Contact.phone == sms.sender)))
    log.info(
        "sms_received",
        extra={"sender": mask_number(sms.sender), "reply": reply.kind, "contacts": len(contacts)},
    )
    if not contacts:
        # After STOP, carriers allow only their own confirmation, which Twilio sends.
        return None if reply.kind is ReplyKind.stop else texts.UNKNOWN_SENDER_SMS
    open_ids = _open_message_ids(session, contacts)
    if reply.kind is not ReplyKind.ack:
        _note_reply(session, open_ids, contacts, sms, reply, now)
        return _answer_keyword(session, contacts, reply.kind)
    targets, answer = _ack_targets(session, contacts, sms.sender, reply.ref, open_ids)
    concerned = targets or (open_ids if reply.ref is None else [])
    _note_reply(session, concerned, contacts, sms, reply, now)
    if answer is not None:
        return answer
    standings = []
    for message_id in targets:
        contact = _contact_for(session, contacts, message_id)
        standings.append(
            take(session, flows, message_id, by=contact.name, via="sms", contact=contact, now=now)
        )
    return sms_for(standings)


def messages_meant(open_ids: Sequence[int], latest_text: Collection[int]) -> list[int] | None:
    """Which open messages a bare '1' takes: the only one, or all of them when they all went in
    the contact's latest text (a bundle that said 'Reply 1 to take them all'). None: ask. Pure."""
    if len(open_ids) == 1 or (open_ids and set(open_ids) <= set(latest_text)):
        return list(open_ids)
    return None


def sms_for(standings: Sequence[Standing]) -> str:
    """The confirmation text for what an acknowledgement achieved, message by message. Pure."""
    yours: dict[str, list[str]] = {}
    others: list[str] = []
    for s in standings:
        if s.verdict in (Verdict.yours, Verdict.open):
            yours.setdefault(s.client, []).append(s.ref)
        elif s.verdict is Verdict.taken:
            others.append(texts.already_taken_sms(s.holder or "Someone", s.ref))
        else:
            others.append(texts.already_closed_sms(s.ref))
    confirmations = [texts.acknowledged_sms(client, refs) for client, refs in yours.items()]
    return texts.fit_two_segments(" ".join(confirmations + others))


def _ack_targets(
    session: Session,
    contacts: Sequence[Contact],
    sender: str,
    ref: str | None,
    open_ids: list[int],
) -> tuple[list[int], str | None]:
    """The messages an ACK means, or (nothing, the text that says why not)."""
    if ref is not None:
        message = _their_message(session, contacts, ref)
        return ([message.id], None) if message else ([], texts.no_such_message_sms(ref))
    if not open_ids:
        return [], texts.NOTHING_OPEN_SMS
    meant = messages_meant(open_ids, _latest_text(session, sender))
    if meant is None:
        return [], texts.which_message_sms([message_ref(i) for i in open_ids])
    return meant, None


def _their_message(session: Session, contacts: Sequence[Contact], ref: str) -> Message | None:
    """The message `ref` names, if it belongs to a client this person is a contact of."""
    message_id = ref_to_id(ref)
    if message_id is None or not 0 < message_id < 2**31:
        return None
    message = session.get(Message, message_id)
    if message is None or message.client_id not in {c.client_id for c in contacts}:
        return None
    return message


def _open_message_ids(session: Session, contacts: Sequence[Contact]) -> list[int]:
    """Open messages these contacts were told about: what a bare '1' could mean."""
    told = select(Delivery.message_id).where(
        Delivery.contact_id.in_([c.id for c in contacts]),
        Delivery.kind.in_(ASKING),
        Delivery.status.in_(REACHED),
    )
    return list(
        session.scalars(
            select(Message.id)
            .where(Message.id.in_(told), Message.status.in_(OPEN_MESSAGE))
            .order_by(Message.id)
        )
    )


def _latest_text(session: Session, address: str) -> set[int]:
    """The messages in the latest notification texted to this number (several when bundled)."""
    latest_sid = (
        select(Delivery.provider_sid)
        .where(
            Delivery.address == address,
            Delivery.channel == Channel.sms,
            Delivery.kind.in_(ASKING),
            Delivery.status.in_(REACHED),
            Delivery.provider_sid.is_not(None),
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return set(
        session.scalars(select(Delivery.message_id).where(Delivery.provider_sid == latest_sid))
    )


def _contact_for(session: Session, contacts: Sequence[Contact], message_id: int) -> Contact:
    """Of one person's contact rows (one per client), the one for this message's client."""
    client_id = session.scalar(select(Message.client_id).where(Message.id == message_id))
    return next((c for c in contacts if c.client_id == client_id), contacts[0])


def _answer_keyword(session: Session, contacts: Sequence[Contact], kind: ReplyKind) -> str | None:
    clients = list(
        session.scalars(
            select(Client.name)
            .where(Client.id.in_({c.client_id for c in contacts}))
            .order_by(Client.name)
        )
    )
    match kind:
        case ReplyKind.stop | ReplyKind.start:
            for contact in contacts:
                contact.sms_opted_out = kind is ReplyKind.stop
            # Twilio itself confirms a STOP, and carriers allow nothing more from us after it.
            # https://help.twilio.com/articles/223134027
            return None if kind is ReplyKind.stop else texts.resubscribed_sms(clients)
        case ReplyKind.help:
            return texts.help_sms(clients)
        case _:
            return texts.NOT_UNDERSTOOD_SMS


def _note_reply(
    session: Session,
    message_ids: Sequence[int],
    contacts: Sequence[Contact],
    sms: SmsReceived,
    reply: Reply,
    now: dt.datetime,
) -> None:
    """Put the reply on the timeline of each message it is about."""
    for message_id in message_ids:
        contact = _contact_for(session, contacts, message_id)
        add_event(session, message_id, "reply", now, contact=contact.key, by=contact.name,
                  text=sms.body[:320], understood=reply.kind.value, ref=reply.ref)  # fmt: skip


# --- the acknowledge link in emails -----------------------------------------------------------


def _linked(session: Session, links: Links, token: str) -> tuple[Message, Contact | None, bool]:
    """The link's message, the contact it was sent to, and whether the link has expired."""
    target = links.read_ack(token)
    message = session.get(Message, target.message_id) if target else None
    if target is None or message is None:
        raise MessageNotFoundError("no message for this link")
    contact = session.get(Contact, target.contact_id) if target.contact_id is not None else None
    return message, contact, target.expired


def link_standing(session: Session, links: Links, token: str) -> Standing:
    """Where the link's message stands for its reader, without acknowledging anything."""
    message, contact, expired = _linked(session, links, token)
    client = _client_name(session, message.client_id)
    if expired:
        return Standing(client, message_ref(message.id), Verdict.expired)
    return standing_of(message, client, contact.name if contact else EMAIL_READER)


class LinkExpiredError(LookupError):
    """A genuine link, older than links work for."""


def linked_recording(session: Session, links: Links, token: str) -> str:
    """The Twilio URL of the link's message's recording, for Nightdesk to fetch and play on
    (never shown). Nothing to play for a client in privacy mode: its emails carry no content."""
    message, _contact, expired = _linked(session, links, token)
    if expired:
        raise LinkExpiredError("the link has expired")
    private = session.scalar(select(Client.private).where(Client.id == message.client_id))
    if message.recording_url is None or private:
        raise MessageNotFoundError("no recording for this link")
    return message.recording_url


def take_by_link(
    session: Session, flows: FlowStore, links: Links, token: str, now: dt.datetime
) -> Standing:
    """The reader clicked 'I'll take it': acknowledge for the contact the email went to, unless
    the link has expired."""
    message, contact, expired = _linked(session, links, token)
    if expired:
        client = _client_name(session, message.client_id)
        return Standing(client, message_ref(message.id), Verdict.expired)
    by = contact.name if contact else EMAIL_READER
    return take(session, flows, message.id, by=by, via="email", contact=contact, now=now)
