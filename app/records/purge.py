"""Purging a client's old records, a batch per unit of work, and deleting recordings at Twilio.

Each batch is one unit: it reads the client's oldest records, asks `retention.due_for_purge`
which are due, deletes them with everything that points at them, owes their recordings'
deletion at Twilio (a `RecordingDeletion` row) and writes its counts in the audit log, all in one
transaction. A process killed between batches leaves whole batches purged and audited, and the
next run carries on; a batch run twice finds nothing the second time.

Recordings: the rows go first, Twilio after. The purge never waits for Twilio, and a recording
Twilio would not delete stays owed (retried with a growing delay), never a reason to keep the
client's rows past their time. Twilio answering 404 means it is gone already: done.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Result, String, cast, delete, exists, literal, select, update
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client as TwilioClient

from app.accounts.service import audit
from app.calls.models import Call, CallEvent
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.console.models import Presence, QueueEntry
from app.db import Database, insert_if_absent
from app.dispatch.models import OPEN_DELIVERY, Delivery, DeliveryKind, Escalation
from app.flows.schema import RetentionSettings
from app.messages.models import Message, MessageEvent, MessageRead
from app.records.models import RecordingDeletion
from app.records.retention import PurgePlan, Record, due_for_purge, purge_before
from app.summaries.models import Summary
from app.timeutil import as_utc
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookStatus

log = logging.getLogger("nightdesk.records")

BATCH = 200  # records per unit: short transactions, however much is due
PURGED = "records_purged"  # the audit entry's kind


@dataclass(frozen=True)
class Retaining:
    """A client with a retention setting."""

    client_id: int
    slug: str
    retention: RetentionSettings


def retaining_clients(
    session: Session, flows: FlowStore, slug: str | None = None
) -> list[Retaining]:
    """Clients whose current flow sets a retention (only `slug`, when given)."""
    query = select(Client).order_by(Client.id)
    if slug is not None:
        query = query.where(Client.slug == slug)
    found = []
    for client in session.scalars(query):
        flow = flows.for_client(session, client.id)
        if flow is not None and flow.retention is not None:
            found.append(Retaining(client.id, client.slug, flow.retention))
    return found


def due_records(
    session: Session, client: Retaining, now: dt.datetime, limit: int = BATCH
) -> PurgePlan:
    """The client's oldest records that are due, up to `limit` messages and `limit` lone calls,
    locked (PostgreSQL): another purger passes over them, so no batch is purged, nor audited,
    twice. SQLite's one writer does the same by itself."""
    before = purge_before(client.retention, now)
    messages = session.execute(
        select(
            Message.id, Message.call_id, Message.created_at, Message.status,
            Message.recording_sid, Message.recording_url,
        )
        .where(Message.client_id == client.client_id, Message.created_at < before)
        .order_by(Message.created_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # two purgers at once take different batches
    )  # fmt: skip
    records = [
        Record(m.id, m.call_id, as_utc(m.created_at), m.status, m.recording_sid, m.recording_url)
        for m in messages
    ]
    lone_calls = session.execute(
        select(Call.id, Call.started_at)
        .where(
            Call.client_id == client.client_id,
            Call.started_at < before,
            ~exists().where(Message.call_id == Call.id),
        )
        .order_by(Call.started_at, Call.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    records += [Record(None, c.id, as_utc(c.started_at)) for c in lone_calls]
    return due_for_purge(client.retention, records, now)


def purge_batch(
    session: Session, client: Retaining, now: dt.datetime, *, by: str, limit: int = BATCH
) -> PurgePlan:
    """One unit: purge up to a batch of the client's due records; returns what it purged."""
    plan = due_records(session, client, now, limit)
    if plan.empty:
        return plan
    for sid in plan.recordings:
        values = {"sid": sid, "client_id": client.client_id, "owed_at": now, "due_at": now}
        insert_if_absent(session, RecordingDeletion, values, "sid")
    _delete_rows(session, plan.message_ids, plan.call_ids)
    counts = plan.counts()
    audit(
        session, PURGED, now, client_id=client.client_id, by=by, days=client.retention.days,
        before=purge_before(client.retention, now).isoformat(), counts=counts,
    )  # fmt: skip
    if plan.never_acknowledged:
        log.warning(
            "purged_unacknowledged_messages",
            extra={"client": client.slug, "message_ids": list(plan.never_acknowledged)},
        )
    return plan


def _delete_rows(session: Session, message_ids: Sequence[int], call_ids: Sequence[int]) -> None:
    """Children first: nothing is left pointing at a row that is gone."""
    if message_ids:
        session.execute(delete(MessageEvent).where(MessageEvent.message_id.in_(message_ids)))
        session.execute(delete(MessageRead).where(MessageRead.message_id.in_(message_ids)))
        session.execute(delete(Delivery).where(Delivery.message_id.in_(message_ids)))
        session.execute(delete(Escalation).where(Escalation.message_id.in_(message_ids)))
        session.execute(
            update(QueueEntry).where(QueueEntry.message_id.in_(message_ids)).values(message_id=None)
        )
    if call_ids:
        entries = select(QueueEntry.id).where(QueueEntry.call_id.in_(call_ids))
        session.execute(
            update(Presence).where(Presence.entry_id.in_(entries)).values(entry_id=None)
        )
        session.execute(delete(QueueEntry).where(QueueEntry.call_id.in_(call_ids)))
    if message_ids:
        session.execute(delete(Message).where(Message.id.in_(message_ids)))
    if call_ids:
        session.execute(delete(CallEvent).where(CallEvent.call_id.in_(call_ids)))
        session.execute(delete(Call).where(Call.id.in_(call_ids)))


def purge_copies(
    session: Session, client: Retaining, now: dt.datetime, *, by: str
) -> dict[str, int]:
    """One unit: the copies of messages' words sent elsewhere, as old as the messages purged:
    webhook bodies sent (or given up on) and morning summary emails. Audited when any went."""
    before = purge_before(client.retention, now)
    endpoints = select(WebhookEndpoint.id).where(WebhookEndpoint.client_id == client.client_id)
    webhooks = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.endpoint_id.in_(endpoints),
            WebhookDelivery.created_at < before,
            WebhookDelivery.status.in_((WebhookStatus.delivered, WebhookStatus.failed)),
        )
    )
    summaries = select(Summary.id).where(
        Summary.client_id == client.client_id,
        Summary.created_at < before,
        Delivery.dedupe_key.like(literal("summary:") + cast(Summary.id, String) + ":%"),
    )
    emails = session.execute(
        delete(Delivery).where(
            Delivery.kind == DeliveryKind.summary,
            Delivery.message_id.is_(None),
            Delivery.status.not_in(OPEN_DELIVERY),
            exists(summaries),
        )
    )
    counts = {"webhook_deliveries": _deleted(webhooks), "summary_emails": _deleted(emails)}
    if any(counts.values()):
        audit(
            session, PURGED, now, client_id=client.client_id, by=by, days=client.retention.days,
            before=before.isoformat(), counts=counts,
        )  # fmt: skip
    return counts


def _deleted(result: Result[Any]) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def purge_client(
    database: Database, client: Retaining, now: dt.datetime, *, by: str
) -> dict[str, int]:
    """Every due record of one client, a batch per unit, until none is left, then the copies
    sent elsewhere; the totals."""
    totals: dict[str, int] = {}
    while True:
        plan = database.run_blocking(lambda s: purge_batch(s, client, now, by=by))
        if plan.empty:
            break
        for name, count in plan.counts().items():
            totals[name] = totals.get(name, 0) + count
    copies = database.run_blocking(lambda s: purge_copies(s, client, now, by=by))
    for name, count in copies.items():
        if count:
            totals[name] = totals.get(name, 0) + count
    return totals


# --- recordings at Twilio ---------------------------------------------------------------------

LEASE = dt.timedelta(minutes=10)  # a claimed deletion is not claimed again for this long


def retry_after(attempts: int) -> dt.timedelta:
    """A growing wait between tries: 5 min, 10, 20 ... at most a day."""
    return min(dt.timedelta(minutes=5) * (1 << max(attempts - 1, 0)), dt.timedelta(days=1))


def claim_deletions(
    session: Session, now: dt.datetime, limit: int = BATCH
) -> list[tuple[int, str]]:
    """The owed deletions that are due, leased so that another worker leaves them alone."""
    rows = session.execute(
        select(RecordingDeletion.id, RecordingDeletion.sid)
        .where(RecordingDeletion.due_at <= now)
        .order_by(RecordingDeletion.due_at, RecordingDeletion.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    ids = [row.id for row in rows]
    if ids:
        session.execute(
            update(RecordingDeletion)
            .where(RecordingDeletion.id.in_(ids))
            .values(due_at=now + LEASE, attempts=RecordingDeletion.attempts + 1)
        )
    return [(row.id, row.sid) for row in rows]


def delete_at_twilio(twilio: TwilioClient, sid: str) -> str | None:
    """Delete one recording at Twilio; None when it is gone (404 too), else why not."""
    try:
        twilio.recordings(sid).delete()
    except TwilioRestException as exc:
        if exc.status == 404:
            return None
        return f"{exc.status}: {exc.msg}"
    except Exception as exc:  # a timeout, a refused connection: try again later
        return f"{type(exc).__name__}: {exc}"
    return None


def settle_deletion(
    session: Session, deletion_id: int, error: str | None, now: dt.datetime
) -> None:
    """Gone: the row goes. Not gone: try again after a while."""
    row = session.get(RecordingDeletion, deletion_id)
    if row is None:
        return
    if error is None:
        session.delete(row)
        return
    row.error, row.due_at = error[:1000], now + retry_after(row.attempts)


def delete_owed_recordings(database: Database, twilio: TwilioClient, now: dt.datetime) -> int:
    """Ask Twilio to delete each recording owed a deletion that is due; how many are gone."""
    gone = 0
    for deletion_id, sid in database.run_blocking(lambda s: claim_deletions(s, now)):
        error = delete_at_twilio(twilio, sid)  # outside any unit: a unit may run twice
        database.run_blocking(
            partial(settle_deletion, deletion_id=deletion_id, error=error, now=now)
        )
        if error is None:
            gone += 1
        else:
            log.warning("recording_delete_failed", extra={"recording_sid": sid, "error": error})
    return gone
