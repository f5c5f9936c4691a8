"""Sending due deliveries: claim under a lease, send outside the transaction, record the outcome.

A send that failed for good tries the contact's next channel, or hurries the next escalation step;
one that may have reached Twilio (a timeout, a dead worker) is looked up before it is sent again.
The claim writes the attempt on its rows (the send it went in, the number, the time, an SMS's
exact words): while its outcome is unknown, a retry sends exactly that again, with exactly the
same deliveries, and the look-up at Twilio searches for exactly that, so a bundle rebuilt with
other messages never reaches a contact twice ("#3, #6" and then "#9, #3").
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from typing import NamedTuple

from sqlalchemy import Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.clients.flows import FlowStore
from app.clients.models import Client, Contact
from app.db import Database
from app.dispatch import outbox, texts
from app.dispatch.links import Links
from app.dispatch.models import (
    OPEN_DELIVERY,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Escalation,
    EscalationState,
)
from app.dispatch.outcomes import Next, SendResult, Verdict, after_send
from app.dispatch.senders import (
    Outgoing,
    PermanentSendError,
    Sender,
    SendError,
    TransientSendError,
)
from app.dispatch.throttle import pace, retry_delay
from app.flows.schema import Channel
from app.messages.models import Message, MessageStatus
from app.messages.timeline import add_event
from app.oncall.escalation import (
    Notification,
    next_channel,
)
from app.timeutil import as_utc

log = logging.getLogger("nightdesk.dispatch")

BATCH = 50
SENDERS = 32  # sends in flight at once
THROTTLED_CHANNELS = (Channel.sms.value, Channel.voice.value)
LEASE = dt.timedelta(seconds=60)  # the default: six times the default send timeout


def lease_for(send_timeout: float) -> dt.timedelta:
    """How long a claim holds its deliveries: well past the longest a send can take (a look-up
    and a send, each a connection and a read within the timeout), so a lease runs out only
    when its worker has died; whoever claims the rows then asks Twilio first."""
    return dt.timedelta(seconds=6 * send_timeout)


@dataclass
class _Send:
    """One send: a delivery, or several bundled SMS for one contact, and what to send."""

    deliveries: list[int]
    outgoing: Outgoing
    check_first: bool  # an earlier attempt may have reached Twilio: ask before sending again


class _Claim(NamedTuple):
    sends: list[_Send]
    taken: int  # the due rows it took (sent, or held for a contact texted moments ago)


@dataclass(frozen=True)
class _Finished:
    """A send whose outcome is known, waiting to be recorded (as of `now`, its claim's time)."""

    send: _Send
    sent: _Sent
    now: dt.datetime


@dataclass(frozen=True)
class _Sent:
    """What came of a send: the provider's id, or the error; and whether the look-up for an
    earlier attempt (when one was needed) answered."""

    sid: str | None
    error: SendError | None
    looked_up: bool = True

    def result(self) -> SendResult:
        if self.error is None:
            return SendResult(accepted=True)
        transient = isinstance(self.error, TransientSendError)
        answered = not (transient and self.error.code is None)  # no code: no answer came
        return SendResult(False, transient, answered, self.looked_up)


@dataclass
class SendDeliveries:
    """Claims due deliveries and sends them, each send on its own thread with its own timeout
    (the senders'), each outcome recorded as soon as it is known (with the others known by
    then): one stalled request at Twilio holds up nobody else's notification, and the next
    claim does not wait for it either."""

    database: Database
    flows: FlowStore
    senders: Mapping[Channel, Sender]
    links: Links
    lease: dt.timedelta = LEASE
    name: str = "deliveries"
    every: dt.timedelta = dt.timedelta(0)
    batch: int = BATCH
    # Called when senders free up after a claim that every sender being busy cut short: the
    # rows left due are claimed then, not at the dispatcher's next poll.
    room_freed: Callable[[], None] = lambda: None
    kinds: tuple[DeliveryKind, ...] = ()  # only these kinds (a command sending its own); all
    # Sends wait on Twilio or SMTP, not on the CPU: many at once keep up with a busy night and
    # leave room for a few stalled ones.
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(SENDERS, thread_name_prefix="send"), repr=False
    )
    _in_flight: int = field(default=0, repr=False)
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _finished: queue.SimpleQueue[_Finished] = field(default_factory=queue.SimpleQueue, repr=False)
    _recording: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cut_short: bool = field(default=False, repr=False)

    def run(self, now: dt.datetime) -> int:
        """Claim what is due, as many as there are free senders, and start sending it."""
        with self._changed:
            room = SENDERS - self._in_flight
            self._cut_short = room <= 0
        if room <= 0:  # every sender waits on a slow provider: a claim would only queue
            return 0
        claim = self.database.run_blocking(lambda session: self._claim(session, now, room))
        with self._changed:
            self._cut_short = room < self.batch and claim.taken == room
            self._in_flight += len(claim.sends)
        for send in claim.sends:
            self._pool.submit(self._send_and_record, send, now)
        return claim.taken

    def wait_until(self, in_flight: int = 0, timeout: float | None = None) -> bool:
        """Wait until at most `in_flight` sends are under way (recorded once they are not);
        False if `timeout` passed first. Tests and shutdown wait for 0."""
        with self._changed:
            return self._changed.wait_for(lambda: self._in_flight <= in_flight, timeout)

    def _send_and_record(self, send: _Send, now: dt.datetime) -> None:
        self._finished.put(_Finished(send, self._send(send), now))
        self._record_finished()

    def _record_finished(self) -> None:
        """Record every finished send not yet recorded, in one unit of work. Whichever sender
        finds the recorder free records for all, so a busy night writes its outcomes in
        batches and each outcome waits only for the sends that finished before it. A sender
        that finds it busy leaves its outcome to the recorder, which looks again before it
        stops."""
        while not self._finished.empty() and self._recording.acquire(blocking=False):
            try:
                batch: list[_Finished] = []
                while not self._finished.empty():
                    batch.append(self._finished.get_nowait())
                if batch:
                    self._record_batch(batch)
            finally:
                self._recording.release()

    def _record_batch(self, batch: list[_Finished]) -> None:
        def record(session: Session) -> None:
            _lock_batch(session, [i for done in batch for i in done.send.deliveries])
            for done in batch:
                self._record(session, done.send, done.sent, done.now)

        try:
            self.database.run_blocking(record)
        except Exception:  # the rows stay leased; whoever claims them next asks Twilio first
            log.exception("sends_not_recorded", extra={"sends": len(batch)})
        finally:
            with self._changed:
                self._in_flight -= len(batch)
                self._changed.notify_all()
                cut_short, self._cut_short = self._cut_short, False
            if cut_short:
                self.room_freed()

    def _claim(self, session: Session, now: dt.datetime, room: int = BATCH) -> _Claim:
        claim = _claim_statement(self.kinds)
        rows = list(session.scalars(claim, {"now": now, "room": min(self.batch, room)}))
        if not rows:
            return _Claim([], 0)
        taken = len(rows)
        rows += _the_rest_of_their_sends(session, rows)
        _load_messages_and_clients(session, rows)
        groups = _group(rows)
        # At most one notification per contact and channel a window, this batch's included.
        paced = [g for g in groups if g[0].kind == DeliveryKind.notify
                 and g[0].channel in THROTTLED_CHANNELS]  # fmt: skip
        plan = pace([(g[0].address, g[0].channel) for g in paced], self._last_sent(session, rows),
                    now)  # fmt: skip
        held = {id(group): until for group, until in zip(paced, plan, strict=True) if until}
        sends: list[_Send] = []
        with session.no_autoflush:  # one UPDATE a row at the end, not one per change
            for group in groups:
                if id(group) in held:  # sent to this contact moments ago: wait, then bundle
                    for row in group:
                        row.status, row.due_at = DeliveryStatus.pending, held[id(group)]
                    continue
                check_first = any(r.uncertain for r in group)
                for row in group:
                    row.status, row.lease_until = DeliveryStatus.sending, now + self.lease
                    row.attempts += 1
                    row.uncertain = True
                outgoing = self._outgoing(session, group, now, in_doubt=check_first)
                if outgoing is not None:
                    sends.append(_Send([r.id for r in group], outgoing, check_first))
        return _Claim(sends, taken)

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

    def _outgoing(
        self, session: Session, group: Sequence[Delivery], now: dt.datetime, *, in_doubt: bool
    ) -> Outgoing | None:
        """What to send for these deliveries, written on them as their attempt; an SMS whose
        earlier attempt is in doubt gets that attempt's words and number again."""
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
        again = in_doubt and first.bundle_key is not None and first.first_attempt_at is not None
        if again and channel is Channel.sms and first.sent_body is not None:
            body, from_number = first.sent_body, first.sent_from or flow.numbers[0]
        else:
            again = again and channel is not Channel.sms
            body = first.body or (
                texts.bundle_sms(client.name, summaries)
                if len(summaries) > 1
                else texts.notification_sms(summaries[0])
            )
            from_number = first.sent_from if again and first.sent_from else flow.numbers[0]
        if not again:  # a fresh attempt: write it down before anything leaves
            for row in group:
                row.bundle_key, row.sent_from, row.first_attempt_at = first.id, from_number, now
                row.sent_body = body if channel is Channel.sms else None
        send_id = first.bundle_key or first.id  # the first of the send: its callbacks name it
        outgoing = Outgoing(
            delivery_id=send_id,
            channel=channel,
            to=first.address,
            from_number=from_number,
            body=body,
            ref=summaries[0].ref,
            attempt_started=as_utc(first.first_attempt_at or now),
            status_callback=(
                self.links.call_status(send_id)
                if channel is Channel.voice
                else self.links.sms_status(send_id)
            ),
            call_url=self.links.call_twiml(send_id) if channel is Channel.voice else None,
        )
        if channel is Channel.email:
            ack_url = self.links.ack(message.id, first.contact_id)
            listen = self.links.ack_recording(ack_url) if message.recording_url else None
            text, html = texts.email_bodies(summaries[0], listen, ack_url, self.links.ack_days)
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
        return texts.MessageSummary.of(
            message, client, private=private, portal=self.links.base, overdue=row.lap > 0
        )

    def _send(self, send: _Send) -> _Sent:
        """Send (or find the earlier attempt of) one delivery: the provider's id, or the error."""
        sender = self.senders[send.outgoing.channel]
        looked_up = not send.check_first
        try:
            if send.check_first:
                previous = sender.find_previous(send.outgoing)
                looked_up = True
                if previous:
                    return _Sent(previous, None)
            return _Sent(sender.send(send.outgoing), None)
        except SendError as exc:
            return _Sent(None, exc, looked_up)
        except Exception as exc:  # an adapter bug must not leave the row leased forever
            log.exception("send_crashed", extra={"delivery_id": send.outgoing.delivery_id})
            return _Sent(None, TransientSendError(str(exc)), looked_up)

    def _record(self, session: Session, send: _Send, sent: _Sent, now: dt.datetime) -> None:
        for delivery_id in send.deliveries:
            delivery = session.get(Delivery, delivery_id)  # loaded, locked, by the caller
            if delivery is None or delivery.status == DeliveryStatus.cancelled:
                continue
            if delivery.status != DeliveryStatus.sending:
                if sent.error is None:  # Twilio's status callback beat us to it: keep its status
                    _record_sent(session, delivery, sent.sid or "", now, keep_status=True)
                continue
            if sent.error is None:
                _record_sent(session, delivery, sent.sid or "", now)
                continue
            verdict = after_send(sent.result(), attempts=delivery.attempts,
                                 was_uncertain=send.check_first)  # fmt: skip
            _record_error(session, self.flows, delivery, sent.error, verdict, now)


@cache
def _claim_statement(kinds: tuple[DeliveryKind, ...]) -> Select[Delivery]:
    """Due deliveries (of these kinds; none: all) not in anyone's hands, or in the hands of a
    worker whose lease ran out. Built once: the dispatcher claims every cycle."""
    now = bindparam("now", type_=Delivery.due_at.type)
    claimable = or_(
        and_(Delivery.status == DeliveryStatus.pending, Delivery.due_at <= now),
        and_(Delivery.status == DeliveryStatus.sending, Delivery.lease_until < now),
    )
    of_kinds = [Delivery.kind.in_(kinds)] if kinds else []
    return (
        select(Delivery)
        .where(claimable, _LEADS_ITS_SEND, *of_kinds)
        .order_by(Delivery.due_at, Delivery.id)
        .limit(bindparam("room"))
        .with_for_update(skip_locked=True)
    )


_MATE = aliased(Delivery)
# A delivery whose attempt is in doubt goes again only with the rest of its send, led by the
# send's first open delivery: the others are never claimed on their own, so no two workers
# can each send the same words, and a batch's LIMIT never splits a send.
_LEADS_ITS_SEND = or_(
    Delivery.bundle_key.is_(None),
    ~exists().where(
        _MATE.bundle_key == Delivery.bundle_key,
        _MATE.id < Delivery.id,
        _MATE.status.in_(OPEN_DELIVERY),
    ),
)


def _the_rest_of_their_sends(session: Session, leads: Sequence[Delivery]) -> list[Delivery]:
    """The other open deliveries of the sends these rows lead, locked."""
    keys = {row.bundle_key for row in leads if row.bundle_key is not None}
    if not keys:
        return []
    return list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.bundle_key.in_(keys),
                Delivery.id.not_in([row.id for row in leads]),
                Delivery.status.in_(OPEN_DELIVERY),
            )
            .order_by(Delivery.id)
            .with_for_update()
        )
    )


def _group(rows: Sequence[Delivery]) -> list[list[Delivery]]:
    """The sends these rows make, in the order they were claimed: an attempt (in doubt, or
    being made) with exactly its deliveries; new texts to one contact as one bundle; anything
    else alone."""
    groups: dict[tuple[object, ...], list[Delivery]] = {}
    for row in rows:
        if row.bundle_key is not None:
            key: tuple[object, ...] = ("attempt", row.bundle_key)
        elif row.kind == DeliveryKind.notify and row.channel == Channel.sms:
            key = ("bundle", row.address)
        else:
            key = ("alone", row.id)
        groups.setdefault(key, []).append(row)
    return [sorted(group, key=lambda row: row.id) for group in groups.values()]


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
    message_ids = list({r.message_id for r in rows if r.message_id is not None})
    messages = session.scalars(_MESSAGES, {"ids": message_ids}).all()
    client_ids = list({m.client_id for m in messages if m.client_id is not None})
    clients = session.scalars(_CLIENTS, {"ids": client_ids}).all()
    _pin(session, [*messages, *clients])


# Built once, run with their ids: building a statement costs more than running it.
_MESSAGES = select(Message).where(Message.id.in_(bindparam("ids", expanding=True)))
_CLIENTS = select(Client).where(Client.id.in_(bindparam("ids", expanding=True)))
_DELIVERIES_LOCKED = (
    select(Delivery).where(Delivery.id.in_(bindparam("ids", expanding=True))).with_for_update()
)


def _lock_batch(session: Session, delivery_ids: Sequence[int]) -> None:
    """A send's deliveries, locked, with their messages and clients: three queries."""
    deliveries = session.scalars(_DELIVERIES_LOCKED, {"ids": list(delivery_ids)}).all()
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
    add_event(session, message.id, "sent", now, **{
        "delivery": delivery.id, "kind": delivery.kind, "channel": delivery.channel,
        "sid": sid, "attempt": delivery.attempts})  # fmt: skip


def _record_error(
    session: Session,
    flows: FlowStore,
    delivery: Delivery,
    error: SendError,
    verdict: Verdict,
    now: dt.datetime,
) -> None:
    delivery.error = str(error)
    delivery.lease_until = None
    delivery.uncertain = verdict.uncertain  # Twilio may have it: ask before the next attempt
    if verdict.start_afresh:  # nothing reached Twilio: the next attempt may be bundled anew
        delivery.bundle_key = delivery.sent_body = delivery.sent_from = None
        delivery.first_attempt_at = None
    detail = {"delivery": delivery.id, "channel": delivery.channel, "error": str(error),
              "code": error.code, "attempt": delivery.attempts}  # fmt: skip
    if verdict.next is Next.retry:
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
    add_event(session, delivery.message_id, kind, now, **detail)


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
