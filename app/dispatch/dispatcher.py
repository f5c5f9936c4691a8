"""The dispatcher: a short list of modules run whenever woken, and at least once a second.

- `FireEscalations` moves each unacknowledged message to its policy's next step when it is due.
- `SendDeliveries` claims due deliveries under a lease, sends them through the senders, and
  records the provider's id or the error (retry with backoff, or fail over).

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of `nightdesk worker` processes
can run side by side; SQLite has one writer at a time, which makes the one claimer safe there.
A worker killed mid-send leaves its rows `sending` with a lease that runs out; whoever claims them
next first asks Twilio whether the earlier attempt went through, so nobody is notified twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import psycopg
from itsdangerous import BadSignature, URLSafeSerializer
from prometheus_client import Histogram
from sqlalchemy import and_, event, func, make_url, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import FlowStore
from app.clients.models import Client, Contact
from app.db import transaction
from app.dispatch import outbox, texts
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
    make_senders,
)
from app.dispatch.throttle import MAX_ATTEMPTS, hold_until, retry_delay
from app.flows.schema import Channel, Flow, Urgency
from app.messages.models import Message, MessageEvent, MessageStatus, message_ref
from app.observability import REGISTRY
from app.oncall.escalation import (
    Notification,
    Position,
    next_channel,
    next_position,
    wait_after,
)
from app.settings import Settings
from app.timeutil import Clock, as_utc

log = logging.getLogger("nightdesk.dispatch")
DEV_PUBLIC_URL = "http://127.0.0.1:8000"  # where callbacks go when NIGHTDESK_PUBLIC_URL is unset
LEASE = dt.timedelta(seconds=60)
BATCH = 50
THROTTLED_CHANNELS = (Channel.sms.value, Channel.voice.value)

MODULE_SECONDS = Histogram(
    "nightdesk_dispatch_module_seconds", "Time per dispatcher module run", ["module"],
    registry=REGISTRY,
)  # fmt: skip
ESCALATION_LATENESS = Histogram(
    "nightdesk_escalation_lateness_seconds", "How late escalation steps fire after their due time",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60), registry=REGISTRY,
)  # fmt: skip


class Waker:
    """Lets a commit that queued work wake the dispatcher at once instead of at its next poll."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


@dataclass(frozen=True)
class Links:
    """Absolute URLs Twilio and email readers come back to."""

    base: str
    secret_key: str

    def sms_status(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/sms/status?d={delivery_id}"

    def call_twiml(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice?d={delivery_id}"

    def call_status(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice/status?d={delivery_id}"

    def ack(self, message_id: int, contact_id: int | None) -> str:
        token = URLSafeSerializer(self.secret_key, salt="ack").dumps([message_id, contact_id])
        return f"{self.base}/ack/{token}"


def read_ack_token(secret_key: str, token: str) -> tuple[int, int | None] | None:
    """The (message id, contact id) an email's acknowledge link stands for, if it is genuine."""
    try:
        message_id, contact_id = URLSafeSerializer(secret_key, salt="ack").loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return int(message_id), (int(contact_id) if contact_id is not None else None)


class Module(Protocol):
    name: str

    def run(self, now: dt.datetime) -> int: ...


@dataclass
class Dispatcher:
    """Runs its modules under one clock; `run_once` is what tests call, `run_forever` the loop."""

    sessions: sessionmaker[Session]
    flows: FlowStore
    senders: Mapping[Channel, Sender]
    links: Links
    clock: Clock
    waker: Waker = field(default_factory=Waker)
    poll: float = 1.0  # seconds between looks when nothing wakes it
    modules: list[Module] = field(init=False)

    def __post_init__(self) -> None:
        self.modules = [
            FireEscalations(self.sessions, self.flows),
            SendDeliveries(self.sessions, self.flows, self.senders, self.links),
        ]

    def run_once(self) -> int:
        """Do everything that is due now; returns how many rows were worked on."""
        done = 0
        for module in self.modules:
            started = time.perf_counter()
            try:
                done += module.run(self.clock())
            except Exception:  # one module's failure must not stop the others
                log.exception("dispatch_module_failed", extra={"module": module.name})
            finally:
                MODULE_SECONDS.labels(module=module.name).observe(time.perf_counter() - started)
        return done

    def run_forever(self, stop: threading.Event) -> None:
        log.info("dispatcher_started")
        while not stop.is_set():
            if self.run_once() == 0:
                self.waker.wait(self.poll)
        log.info("dispatcher_stopped")


# --- escalation -----------------------------------------------------------------------------


@dataclass
class FireEscalations:
    sessions: sessionmaker[Session]
    flows: FlowStore
    name: str = "escalations"

    def run(self, now: dt.datetime) -> int:
        with transaction(self.sessions) as session:
            due = session.scalars(
                select(Escalation)
                .where(Escalation.state == EscalationState.active, Escalation.next_at <= now)
                .order_by(Escalation.next_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            for escalation in due:
                if escalation.next_at is not None:
                    ESCALATION_LATENESS.observe((now - as_utc(escalation.next_at)).total_seconds())
                self._advance(session, escalation, now)
            return len(due)

    def _advance(self, session: Session, escalation: Escalation, now: dt.datetime) -> None:
        message = session.get(Message, escalation.message_id)
        flow = self.flows.for_client(session, message.client_id) if message else None
        if message is None or flow is None or message.status in (
            MessageStatus.acknowledged, MessageStatus.closed):  # fmt: skip
            escalation.state, escalation.next_at = EscalationState.acknowledged, None
            return
        urgency = Urgency(escalation.urgency)
        policy = flow.policy_for(urgency)
        position = next_position(policy, Position(escalation.round, escalation.step))
        if position is None:
            self._give_up(session, escalation, message, flow, now)
            return
        queued = outbox.queue_step(session, message, flow, urgency, position, now)
        escalation.round, escalation.step = position.round, position.step
        escalation.next_at = now + wait_after(policy, position) if queued else now
        session.add(MessageEvent(message_id=message.id, kind="escalated", at=now, detail={
            "round": position.round, "step": position.step, "notifications": queued}))  # fmt: skip

    def _give_up(
        self,
        session: Session,
        escalation: Escalation,
        message: Message,
        flow: Flow,
        now: dt.datetime,
    ) -> None:
        """The whole policy ran with no acknowledgement: say so, and tell the fallback contact."""
        escalation.state, escalation.next_at = EscalationState.exhausted, None
        message.status = MessageStatus.unacknowledged
        fallback_key = flow.policy_for(Urgency(escalation.urgency)).fallback
        fallback = flow.contact(fallback_key) if fallback_key else None
        session.add(MessageEvent(message_id=message.id, kind="unacknowledged", at=now, detail={
            "fallback": fallback.id if fallback else None}))  # fmt: skip
        if fallback is None:
            return
        body = texts.unacknowledged_sms(flow.name, message_ref(message.id))
        channel, address = (
            (Channel.sms, fallback.phone) if fallback.phone else (Channel.email, fallback.email)
        )
        if address:
            contact_id = session.scalar(
                select(Contact.id).where(
                    Contact.client_id == message.client_id, Contact.key == fallback.id
                )
            )
            outbox.queue_text(session, message, kind=DeliveryKind.fallback, address=address,
                              body=body, key="fallback", now=now, channel=channel,
                              contact_id=contact_id)  # fmt: skip


# --- sending --------------------------------------------------------------------------------


@dataclass
class _Send:
    """One send: a delivery, or several bundled SMS for one contact, and what to send."""

    deliveries: list[int]
    outgoing: Outgoing
    check_first: bool  # an earlier attempt may have reached Twilio: ask before sending again


@dataclass
class SendDeliveries:
    sessions: sessionmaker[Session]
    flows: FlowStore
    senders: Mapping[Channel, Sender]
    links: Links
    name: str = "deliveries"

    def run(self, now: dt.datetime) -> int:
        with transaction(self.sessions) as session:
            sends = self._claim(session, now)
        for send in sends:
            self._send(send, now)
        return sum(len(s.deliveries) for s in sends)

    def _claim(self, session: Session, now: dt.datetime) -> list[_Send]:
        claimable = or_(
            and_(Delivery.status == DeliveryStatus.pending, Delivery.due_at <= now),
            and_(Delivery.status == DeliveryStatus.sending, Delivery.lease_until < now),
        )
        rows = session.scalars(
            select(Delivery)
            .where(claimable)
            .order_by(Delivery.due_at, Delivery.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        groups: dict[tuple[str, str, str], list[Delivery]] = {}
        for row in rows:
            if row.kind == DeliveryKind.notify and row.channel in THROTTLED_CHANNELS:
                held = hold_until(self._last_sent(session, row), now)
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

    def _last_sent(self, session: Session, row: Delivery) -> dt.datetime | None:
        last = session.scalar(
            select(func.max(Delivery.sent_at)).where(
                Delivery.address == row.address,
                Delivery.channel == row.channel,
                Delivery.kind == DeliveryKind.notify,
                Delivery.sent_at.is_not(None),
            )
        )
        return as_utc(last) if last else None

    def _outgoing(self, session: Session, group: Sequence[Delivery]) -> Outgoing | None:
        first = group[0]
        message = session.get(Message, first.message_id)
        client = session.get(Client, message.client_id) if message and message.client_id else None
        flow = self.flows.for_client(session, message.client_id) if message else None
        if message is None or client is None or flow is None:
            for row in group:
                row.status, row.error = DeliveryStatus.failed, "no client to send for"
            return None
        summaries = [self._summary_of(session, row, client.name) for row in group]
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
            text, html = texts.email_bodies(summaries[0], message.recording_url, ack_url)
            subject = texts.email_subject(summaries[0])
            if first.body:  # a one-off text sent by email
                outgoing = replace(outgoing, subject=f"{client.name}: #{summaries[0].ref}")
            else:
                outgoing = replace(outgoing, body=text, html=html, subject=subject)
        return outgoing

    def _summary_of(self, session: Session, row: Delivery, client: str) -> texts.MessageSummary:
        message = session.get(Message, row.message_id)
        assert message is not None  # a delivery's message is never deleted
        return texts.MessageSummary.of(message, client)

    def _send(self, send: _Send, now: dt.datetime) -> None:
        sender = self.senders[send.outgoing.channel]
        sid: str | None = None
        error: SendError | None = None
        try:
            if send.check_first:
                sid = sender.find_previous(send.outgoing)
            if sid is None:
                sid = sender.send(send.outgoing)
        except SendError as exc:
            error = exc
        except Exception as exc:  # an adapter bug must not leave the row leased forever
            log.exception("send_crashed", extra={"delivery_id": send.outgoing.delivery_id})
            error = TransientSendError(str(exc))
        with transaction(self.sessions) as session:
            for delivery_id in send.deliveries:
                delivery = session.get(Delivery, delivery_id, with_for_update=True)
                if delivery is None or delivery.status == DeliveryStatus.cancelled:
                    continue
                if delivery.status != DeliveryStatus.sending and error is None:
                    # Twilio's status callback beat us to it; keep its status, add what we know.
                    _record_sent(session, delivery, sid or "", now, keep_status=True)
                    continue
                if delivery.status != DeliveryStatus.sending:
                    continue
                if error is None:
                    _record_sent(session, delivery, sid or "", now)
                else:
                    _record_error(session, self.flows, delivery, error, now)


def _record_sent(
    session: Session, delivery: Delivery, sid: str, now: dt.datetime, *, keep_status: bool = False
) -> None:
    if not keep_status:
        delivery.status = DeliveryStatus.sent
    delivery.provider_sid, delivery.sent_at = delivery.provider_sid or sid, now
    delivery.uncertain, delivery.lease_until, delivery.error = False, None, None
    message = session.get(Message, delivery.message_id)
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
        session.add(MessageEvent(message_id=delivery.message_id, kind="retrying", at=now,
                                 detail=detail))  # fmt: skip
        return
    delivery.status = DeliveryStatus.failed
    session.add(MessageEvent(message_id=delivery.message_id, kind="failed", at=now, detail=detail))
    if isinstance(error, PermanentSendError) and error.code == 21610:  # the contact sent STOP
        contact = session.get(Contact, delivery.contact_id) if delivery.contact_id else None
        if contact is not None:
            contact.sms_opted_out = True
    move_on_after_failure(session, flows, delivery, now)


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


def wake_on_commit(sessions: sessionmaker[Session], waker: Waker) -> None:
    """Wake the in-process dispatcher when a transaction that queued work commits."""

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop("wake_dispatcher", False):
            waker.wake()

    @event.listens_for(sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop("wake_dispatcher", None)


def make_dispatcher(
    settings: Settings, sessions: sessionmaker[Session], flows: FlowStore, clock: Clock
) -> Dispatcher:
    """The dispatcher as `nightdesk serve` and `nightdesk worker` run it."""
    base = settings.public_url.rstrip("/") or DEV_PUBLIC_URL
    links = Links(base, settings.secret_key)
    dispatcher = Dispatcher(sessions, flows, make_senders(settings), links, clock)
    wake_on_commit(sessions, dispatcher.waker)
    return dispatcher


def listen_for_work(database_url: str, waker: Waker, stop: threading.Event) -> None:
    """PostgreSQL LISTEN: a commit that queued work in any process wakes this dispatcher.

    Runs until `stop` is set; reconnects after a lost connection (polling covers the gap).
    """
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                while not stop.is_set():
                    for _notice in connection.notifies(timeout=1.0):
                        waker.wake()
        except psycopg.Error:
            log.warning("dispatch_listen_lost", exc_info=True)
            stop.wait(1.0)


def start_in_background(dispatcher: Dispatcher, database_url: str) -> Callable[[], None]:
    """Run the dispatcher on daemon threads (inside `nightdesk serve`); returns a stop function."""
    stop = threading.Event()
    threads = [threading.Thread(target=dispatcher.run_forever, args=(stop,), name="dispatcher")]
    if database_url.startswith("postgresql"):
        threads.append(
            threading.Thread(
                target=listen_for_work,
                args=(database_url, dispatcher.waker, stop),
                name="dispatch-listen",
            )
        )
    for thread in threads:
        thread.daemon = True
        thread.start()

    def stop_it() -> None:
        stop.set()
        dispatcher.waker.wake()
        for thread in threads:
            thread.join(timeout=10)

    return stop_it
