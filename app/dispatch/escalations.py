"""Moving each unacknowledged message to the next step of its policy when that step is due."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from prometheus_client import Histogram
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.clients.models import Contact
from app.db import Database
from app.dispatch import outbox, texts
from app.dispatch.models import (
    DeliveryKind,
    Escalation,
    EscalationState,
)
from app.dispatch.sending import BATCH
from app.flows.schema import Channel, Flow, Urgency
from app.messages.models import Message, MessageStatus, message_ref
from app.messages.timeline import add_event
from app.observability import REGISTRY
from app.oncall.escalation import (
    Position,
    next_position,
    wait_after,
)
from app.timeutil import as_utc

log = logging.getLogger("nightdesk.dispatch")

ESCALATION_LATENESS = Histogram(
    "nightdesk_escalation_lateness_seconds", "How late escalation steps fire after their due time",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60), registry=REGISTRY,
)  # fmt: skip


@dataclass
class FireEscalations:
    database: Database
    flows: FlowStore
    name: str = "escalations"
    # Steps are minutes apart: looking twice a second keeps them under a second late, and
    # leaves the cycles a burst of messages wakes to sending (one unit of work, not two).
    every: dt.timedelta = dt.timedelta(seconds=0.5)
    batch: int = BATCH

    def run(self, now: dt.datetime) -> int:
        return self.database.run_blocking(lambda session: self._fire_due(session, now))

    def _fire_due(self, session: Session, now: dt.datetime) -> int:
        due = session.scalars(
            select(Escalation)
            .where(Escalation.state == EscalationState.active, Escalation.next_at <= now)
            .order_by(Escalation.next_at)
            .limit(self.batch)
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
        queued = outbox.queue_step(session, message, flow, urgency, position, now, escalation.lap)
        escalation.round, escalation.step = position.round, position.step
        escalation.next_at = now + wait_after(policy, position) if queued else now
        add_event(session, message.id, "escalated", now,
                  round=position.round, step=position.step, notifications=queued)  # fmt: skip

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
        add_event(session, message.id, "unacknowledged", now,
                  fallback=fallback.id if fallback else None)  # fmt: skip
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
