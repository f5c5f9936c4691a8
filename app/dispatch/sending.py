"""Sending due deliveries: claim under a lease, send outside the transaction, record the outcome.

A send that failed for good tries the contact's next channel, or hurries the next escalation step;
one that may have reached Twilio (a timeout, a dead worker) is looked up before it is sent again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.clients.models import Client, Contact
from app.db import Database
from app.dispatch import outbox, texts
from app.dispatch.links import Links
from app.dispatch.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Escalation,
    EscalationState,
)
from app.dispatch.senders import (
    Outgoing,
    PermanentSendError,
    Sender,
    SendError,
    TransientSendError,
)
from app.dispatch.throttle import MAX_ATTEMPTS, hold_until, retry_delay
from app.flows.schema import Channel
from app.messages.models import Message, MessageEvent, MessageStatus
from app.oncall.escalation import (
    Notification,
    next_channel,
)
from app.timeutil import as_utc

log = logging.getLogger("nightdesk.dispatch")

LEASE = dt.timedelta(seconds=60)
BATCH = 50
SENDERS = 8  # sends in flight at once
THROTTLED_CHANNELS = (Channel.sms.value, Channel.voice.value)


@dataclass
class _Send:
    """One send: a delivery, or several bundled SMS for one contact, and what to send."""

    deliveries: list[int]
    outgoing: Outgoing
    check_first: bool  # an earlier attempt may have reached Twilio: ask before sending again


@dataclass
class SendDeliveries:
    database: Database
    flows: FlowStore
    senders: Mapping[Channel, Sender]
    links: Links
    name: str = "deliveries"
    kinds: tuple[DeliveryKind, ...] = ()  # only these kinds (a command sending its own); all
    # Sends wait on Twilio or SMTP, not on the CPU: several at once keep up with a busy night.
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SENDERS, thread_name_prefix="send"), repr=False
    )

    def run(self, now: dt.datetime) -> int:
        sends = self.database.run_blocking(lambda session: self._claim(session, now))
        if not sends:
            return 0
        outcomes = list(self._pool.map(self._send, sends))

        def record(session: Session) -> None:  # one write for the whole batch
            _lock_batch(session, [i for send in sends for i in send.deliveries])
            for send, (sid, error) in zip(sends, outcomes, strict=True):
                self._record(session, send, sid, error, now)

        self.database.run_blocking(record)
        return sum(len(s.deliveries) for s in sends)

    def _claim(self, session: Session, now: dt.datetime) -> list[_Send]:
        claimable = or_(
            and_(Delivery.status == DeliveryStatus.pending, Delivery.due_at <= now),
            and_(Delivery.status == DeliveryStatus.sending, Delivery.lease_until < now),
        )
        if self.kinds:
            claimable = and_(claimable, Delivery.kind.in_(self.kinds))
        rows = session.scalars(
            select(Delivery)
            .where(claimable)
            .order_by(Delivery.due_at, Delivery.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        _load_messages_and_clients(session, rows)
        last_sent = self._last_sent(session, rows)
        groups: dict[tuple[str, str, str], list[Delivery]] = {}
        for row in rows:
            if row.kind == DeliveryKind.notify and row.channel in THROTTLED_CHANNELS:
                held = hold_until(last_sent.get((row.address, row.channel)), now)
                if held is not None:  # sent to this contact moments ago: wait, then bundle
                    row.status, row.due_at = DeliveryStatus.pending, held
                    continue
            bundle = row.kind == DeliveryKind.notify and row.channel == Channel.sms
            key = (row.channel, row.address, "bundle" if bundle else str(row.id))
            groups.setdefault(key, []).append(row)
        sends: list[_Send] = []
        for group in groups.values():
            check_first = any(r.uncertain for r in group)
            for row in group:
                row.status, row.lease_until = DeliveryStatus.sending, now + LEASE
                row.attempts += 1
                row.uncertain = True
            outgoing = self._outgoing(session, group)
            if outgoing is not None:
                sends.append(_Send([r.id for r in group], outgoing, check_first))
        return sends

    def _last_sent(
        self, session: Session, rows: Sequence[Delivery]
    ) -> dict[tuple[str, str], dt.datetime]:
        """When each (address, channel) in the batch was last sent a notification."""
        found = session.execute(
            select(Delivery.address, Delivery.channel, func.max(Delivery.sent_at))
            .where(
                Delivery.address.in_({r.address for r in rows}),
                Delivery.kind == DeliveryKind.notify,
                Delivery.sent_at.is_not(None),
            )
            .group_by(Delivery.address, Delivery.channel)
        )
        return {(address, channel): as_utc(at) for address, channel, at in found if at}

    def _outgoing(self, session: Session, group: Sequence[Delivery]) -> Outgoing | None:
        first = group[0]
        if first.message_id is None:
            return _written_email(first)
        message = session.get(Message, first.message_id)
        client = session.get(Client, message.client_id) if message and message.client_id else None
        flow = self.flows.for_client(session, message.client_id) if message else None
        if message is None or client is None or flow is None:
            for row in group:
                row.status, row.error = DeliveryStatus.failed, "no client to send for"
            return None
        summaries = [self._summary_of(session, row, client.name, flow.private) for row in group]
        channel = Channel(first.channel)
        body = first.body or (
            texts.bundle_sms(client.name, summaries)
            if len(summaries) > 1
            else texts.notification_sms(summaries[0])
        )
        outgoing = Outgoing(
            delivery_id=first.id,
            channel=channel,
            to=first.address,
            from_number=flow.numbers[0],
            body=body,
            ref=summaries[0].ref,
            attempt_started=as_utc(first.created_at),
            status_callback=(
                self.links.call_status(first.id)
                if channel is Channel.voice
                else self.links.sms_status(first.id)
            ),
            call_url=self.links.call_twiml(first.id) if channel is Channel.voice else None,
        )
        if channel is Channel.email:
            ack_url = self.links.ack(message.id, first.contact_id)
            text, html = texts.email_bodies(
                summaries[0], message.recording_url, ack_url, self.links.ack_days
            )
            subject = texts.email_subject(summaries[0])
            if first.body:  # a one-off text sent by email
                outgoing = replace(outgoing, subject=f"{client.name}: #{summaries[0].ref}")
            else:
                outgoing = replace(outgoing, body=text, html=html, subject=subject)
        return outgoing

    def _summary_of(
        self, session: Session, row: Delivery, client: str, private: bool
    ) -> texts.MessageSummary:
        message = session.get(Message, row.message_id)
        assert message is not None  # a delivery's message is never deleted
        return texts.MessageSummary.of(message, client, private=private, portal=self.links.base)

    def _send(self, send: _Send) -> tuple[str | None, SendError | None]:
        """Send (or find the earlier attempt of) one delivery: the provider's id, or the error."""
        sender = self.senders[send.outgoing.channel]
        try:
            sid = sender.find_previous(send.outgoing) if send.check_first else None
            return (sid or sender.send(send.outgoing)), None
        except SendError as exc:
            return None, exc
        except Exception as exc:  # an adapter bug must not leave the row leased forever
            log.exception("send_crashed", extra={"delivery_id": send.outgoing.delivery_id})
            return None, TransientSendError(str(exc))

    def _record(
        self,
        session: Session,
        send: _Send,
        sid: str | None,
        error: SendError | None,
        now: dt.datetime,
    ) -> None:
        for delivery_id in send.deliveries:
            delivery = session.get(Delivery, delivery_id)  # loaded, locked, by _lock_batch
            if delivery is None or delivery.status == DeliveryStatus.cancelled:
                continue
            if delivery.status != DeliveryStatus.sending:
                if error is None:  # Twilio's status callback beat us to it: keep its status
                    _record_sent(session, delivery, sid or "", now, keep_status=True)
                continue
            if error is None:
                _record_sent(session, delivery, sid or "", now)
            else:
                _record_error(session, self.flows, delivery, error, now)


def _written_email(delivery: Delivery) -> Outgoing:
    """An email about no single message (a summary, a notice), written when it was queued."""
    return Outgoing(
        delivery_id=delivery.id,
        channel=Channel.email,
        to=delivery.address,
        from_number="",
        body=delivery.body or "",
        ref="",
        attempt_started=as_utc(delivery.created_at),
        status_callback="",
        subject=delivery.subject,
        html=delivery.html,
    )


def _load_messages_and_clients(session: Session, rows: Sequence[Delivery]) -> None:
    """Two queries for the whole batch; later `session.get`s find them in the identity map."""
    messages = session.scalars(
        select(Message).where(Message.id.in_({r.message_id for r in rows}))
    ).all()
    client_ids = {m.client_id for m in messages if m.client_id is not None}
    clients = session.scalars(select(Client).where(Client.id.in_(client_ids))).all()
    _pin(session, [*messages, *clients])


def _lock_batch(session: Session, delivery_ids: Sequence[int]) -> None:
    """The sent batch's deliveries, locked, with their messages and clients: three queries."""
    deliveries = session.scalars(
        select(Delivery).where(Delivery.id.in_(delivery_ids)).with_for_update()
    ).all()
    _pin(session, deliveries)
    _load_messages_and_clients(session, deliveries)


def _pin(session: Session, objects: Sequence[object]) -> None:
    """Keep loaded objects for the session's life: its identity map holds them only weakly, and
    one collected in between would be fetched again by `session.get`, a query each."""
    session.info.setdefault("pinned", []).extend(objects)


def _record_sent(
    session: Session, delivery: Delivery, sid: str, now: dt.datetime, *, keep_status: bool = False
) -> None:
    if not keep_status:
        delivery.status = DeliveryStatus.sent
    delivery.provider_sid, delivery.sent_at = delivery.provider_sid or sid, now
    delivery.uncertain, delivery.lease_until = False, None
    if delivery.status != DeliveryStatus.failed:  # a failure Twilio reported keeps its reason
        delivery.error = None
    message = session.get(Message, delivery.message_id) if delivery.message_id else None
    if message is None:
        return
    if delivery.kind == DeliveryKind.notify and message.status == MessageStatus.new:
        message.status = MessageStatus.notified
    session.add(MessageEvent(message_id=message.id, kind="sent", at=now, detail={
        "delivery": delivery.id, "kind": delivery.kind, "channel": delivery.channel,
        "sid": sid, "attempt": delivery.attempts}))  # fmt: skip


def _record_error(
    session: Session, flows: FlowStore, delivery: Delivery, error: SendError, now: dt.datetime
) -> None:
    transient = isinstance(error, TransientSendError) and delivery.attempts < MAX_ATTEMPTS
    delivery.error = str(error)
    delivery.lease_until = None
    # No answer at all (a timeout): Twilio may have it, so ask before the next attempt.
    delivery.uncertain = isinstance(error, TransientSendError) and error.code is None
    detail = {"delivery": delivery.id, "channel": delivery.channel, "error": str(error),
              "code": error.code, "attempt": delivery.attempts}  # fmt: skip
    if transient:
        delivery.status = DeliveryStatus.pending
        delivery.due_at = now + retry_delay(delivery.attempts)
        detail["retry_at"] = as_utc(delivery.due_at).isoformat()
        _on_timeline(session, delivery, "retrying", now, detail)
        return
    delivery.status = DeliveryStatus.failed
    _on_timeline(session, delivery, "failed", now, detail)
    if isinstance(error, PermanentSendError) and error.code == 21610:  # the contact sent STOP
        contact = session.get(Contact, delivery.contact_id) if delivery.contact_id else None
        if contact is not None:
            contact.sms_opted_out = True
    move_on_after_failure(session, flows, delivery, now)


def _on_timeline(
    session: Session, delivery: Delivery, kind: str, now: dt.datetime, detail: dict[str, object]
) -> None:
    """On the delivery's message's timeline; an email about no one message goes to the log."""
    if delivery.message_id is None:
        log.warning(f"delivery_{kind}", extra={"delivery_id": delivery.id, "kind": delivery.kind,
                                              "error": detail.get("error")})  # fmt: skip
        return
    session.add(MessageEvent(message_id=delivery.message_id, kind=kind, at=now, detail=detail))


def move_on_after_failure(
    session: Session, flows: FlowStore, delivery: Delivery, now: dt.datetime
) -> None:
    """A failed notification tries the contact's next channel, or hurries the next step along."""
    if delivery.kind != DeliveryKind.notify:
        return
    message = session.get(Message, delivery.message_id)
    flow = flows.for_client(session, message.client_id) if message else None
    if message is None or flow is None or message.status not in (
        MessageStatus.new, MessageStatus.notified):  # fmt: skip
        return
    contact_row = session.get(Contact, delivery.contact_id) if delivery.contact_id else None
    contact = flow.contact(contact_row.key) if contact_row else None
    if delivery.failover and contact is not None and contact_row is not None:
        following = next_channel(contact, after=Channel(delivery.channel))
        if following is not None:
            channel, address = following
            owed = Notification(contact.id, channel, address, delivery.round, delivery.step, True)
            if outbox.queue_notification(session, message, owed, contact_row.id, now, now):
                outbox.wake_dispatcher(session)
                return
    still_trying = session.scalar(
        select(func.count()).select_from(Delivery).where(
            Delivery.message_id == message.id,
            Delivery.kind == DeliveryKind.notify,
            Delivery.round == delivery.round,
            Delivery.step == delivery.step,
            Delivery.status.in_((DeliveryStatus.pending, DeliveryStatus.sending,
                                 DeliveryStatus.sent, DeliveryStatus.delivered)),
        )
    )  # fmt: skip
    if not still_trying:  # nobody at this step can be reached: don't wait out the delay
        escalation = session.scalars(
            select(Escalation).where(
                Escalation.message_id == message.id, Escalation.state == EscalationState.active
            )
        ).first()
        if escalation is not None and (escalation.round, escalation.step) == (
            delivery.round, delivery.step):  # fmt: skip
            escalation.next_at = now
            outbox.wake_dispatcher(session)
