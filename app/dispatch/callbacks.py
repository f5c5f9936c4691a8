"""The dispatcher's call-backs module: a message whose promised call back is overdue is
escalated again, once.

Due deadlines are claimed like the outbox's rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; one
writer at a time on SQLite), and each is cleared in the transaction that acts on it, so two
dispatchers never act on the same deadline and a unit run twice finds it gone. What to do is
`app.oncall.callbacks.at_deadline`, a pure function.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.db import Database
from app.dispatch import outbox
from app.dispatch.models import Escalation, EscalationState
from app.flows.schema import Urgency
from app.messages.models import Message, MessageStatus
from app.messages.timeline import add_event
from app.oncall.callbacks import AtDeadline, at_deadline
from app.oncall.escalation import Position, wait_after
from app.timeutil import as_utc

log = logging.getLogger("nightdesk.dispatch")
BATCH = 100


@dataclass
class ReescalateOverdueCallbacks:
    database: Database
    flows: FlowStore
    name: str = "callbacks"
    every: dt.timedelta = dt.timedelta(seconds=10)  # promises are minutes long
    batch: int = BATCH

    def run(self, now: dt.datetime) -> int:
        return self.database.run_blocking(lambda session: self._overdue(session, now))

    def _overdue(self, session: Session, now: dt.datetime) -> int:
        due = session.scalars(
            select(Escalation)
            .where(Escalation.callback_due_at <= now)
            .order_by(Escalation.callback_due_at)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        ).all()
        for escalation in due:
            self._act(session, escalation, now)
        return len(due)

    def _act(self, session: Session, escalation: Escalation, now: dt.datetime) -> None:
        due_at = as_utc(escalation.callback_due_at or now)
        escalation.callback_due_at = None  # this deadline is handled, whatever comes next
        message = session.get(Message, escalation.message_id)
        flow = self.flows.for_client(session, message.client_id) if message else None
        if message is None or flow is None:
            return
        verdict = at_deadline(
            due_at,
            now,
            called_back=message.called_back_at is not None,
            closed=message.status == MessageStatus.closed,
            escalation_active=escalation.state == EscalationState.active,
        )
        if verdict in (AtDeadline.met, AtDeadline.not_due):
            return
        escalation.callback_missed_at = now
        add_event(session, message.id, "callback_overdue", now, due=due_at.isoformat(),
                  escalated_again=verdict is AtDeadline.reescalate)  # fmt: skip
        log.info("callback_overdue", extra={"message_id": message.id, "verdict": verdict.value})
        if verdict is not AtDeadline.reescalate:
            return
        # The policy from its first step, as new notifications: whoever acknowledges takes it.
        urgency, first = Urgency(escalation.urgency), Position(0, 0)
        escalation.lap += 1
        escalation.round, escalation.step = first.round, first.step
        escalation.state = EscalationState.active
        message.status = MessageStatus.notified
        queued = outbox.queue_step(session, message, flow, urgency, first, now, escalation.lap)
        escalation.next_at = now + wait_after(flow.policy_for(urgency), first) if queued else now
        outbox.wake_dispatcher(session)
