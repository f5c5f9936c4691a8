"""Owing and queueing summaries: which are due, and writing one with its emails in one unit.

A summary is a `summaries` row keyed by client and period start, inserted if absent, and one
outbox delivery (kind `summary`) per recipient in the same transaction: whichever worker or
command gets there first writes it, the others' inserts do nothing, and the dispatcher sends
the emails under its leases and retries like every other notification.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.clients.models import Contact
from app.db import insert_if_absent
from app.dispatch.models import DeliveryKind
from app.dispatch.outbox import queue_email
from app.summaries.digest import Digest, render, what_to_do
from app.summaries.models import Summary, SummaryStatus, summary_key
from app.summaries.queries import clients_and_last_ends, period_entries
from app.summaries.schedule import Period, Schedule, due_summary, summary_now

log = logging.getLogger("nightdesk.summaries")


@dataclass(frozen=True)
class Owed:
    """A summary a client is owed: its period, and whether someone asked for it (`--now`)."""

    client_id: int
    client: str  # slug
    name: str
    flow_version_id: int
    zone: ZoneInfo
    period: Period
    on_demand: bool
    after_another: bool  # the client has had a summary before


@dataclass(frozen=True)
class Outcome:
    """What became of an owed summary: queued (to `recipients`), skipped, or nothing new."""

    owed: Owed
    status: str  # a SummaryStatus, "nothing_new", or "taken" (another worker wrote it)
    messages: int = 0
    urgent: int = 0
    recipients: int = 0
    email_keys: tuple[str, ...] = ()  # its deliveries' dedupe keys


class UnknownClientError(LookupError):
    """No client by that name, or it has no summary in its flow file."""


def owed_summaries(
    session: Session,
    flows: FlowStore,
    now: dt.datetime,
    *,
    client: str | None = None,
    on_demand: bool = False,
) -> list[Owed]:
    """The summaries due by `now` (or, `on_demand`, each client's summary up to now)."""
    owed: list[Owed] = []
    with_a_summary = 0
    for row in clients_and_last_ends(session, client):
        schedule = Schedule.of(flows.get(session, row.flow_version_id))
        if schedule is None:
            continue
        with_a_summary += 1
        decide = summary_now if on_demand else due_summary
        period = decide(schedule, row.last_period_end, now)
        if period is not None:
            owed.append(
                Owed(
                    row.id,
                    row.slug,
                    row.name,
                    row.flow_version_id,
                    schedule.zone,
                    period,
                    on_demand,
                    after_another=row.last_period_end is not None,
                )
            )
    if client is not None and not with_a_summary:
        raise UnknownClientError(f"no client {client!r} with a summary in its flow file")
    return owed


def queue_summary(
    session: Session, flows: FlowStore, owed: Owed, portal: str, now: dt.datetime
) -> Outcome:
    """Write the summary and queue its emails, unless another worker has written it already."""
    flow = flows.get(session, owed.flow_version_id)
    assert flow.summary is not None  # owed_summaries only owes summaries to clients with one
    entries = period_entries(session, owed.client_id, flow.name, owed.period, portal)
    action = what_to_do(
        len(entries),
        skip_empty=flow.summary.skip_empty,
        on_demand=owed.on_demand,
        after_another=owed.after_another,
    )
    if action == "nothing_new":
        return Outcome(owed, "nothing_new")
    addresses = flow.summary_addresses()
    urgent = sum(1 for e in entries if e.urgency != "routine")
    if action == "skip":
        status, queued_to = SummaryStatus.skipped, 0
    elif not addresses:
        status, queued_to = SummaryStatus.no_recipients, 0
    else:
        status, queued_to = SummaryStatus.queued, len(addresses)
    key = summary_key(owed.client_id, owed.period.start)
    values = {
        "key": key,
        "client_id": owed.client_id,
        "period_start": owed.period.start,
        "period_end": owed.period.end,
        "on_demand": owed.on_demand,
        "status": status.value,
        "messages": len(entries),
        "urgent": urgent,
        "recipients": queued_to,
        "created_at": now,
    }
    if not insert_if_absent(session, Summary, values, "key"):
        return Outcome(owed, "taken")
    keys: list[str] = []
    if status is SummaryStatus.queued:
        summary_id = session.scalars(select(Summary.id).where(Summary.key == key)).one()
        digest = Digest(flow.name, flow.zone, owed.period, entries, private=flow.private)
        subject, text, html = render(digest)
        contacts = _contact_ids(session, owed.client_id)
        for index, (contact, address) in enumerate(addresses):
            keys.append(f"summary:{summary_id}:{index}")
            queue_email(
                session,
                kind=DeliveryKind.summary,
                address=address,
                subject=subject,
                text=text,
                html=html,
                key=keys[-1],
                now=now,
                contact_id=contacts.get(contact) if contact else None,
            )
    log.info(
        "summary_written",
        extra={
            "client": owed.client,
            "status": status.value,
            "messages": len(entries),
            "on_demand": owed.on_demand,
        },
    )
    return Outcome(owed, status.value, len(entries), urgent, queued_to, tuple(keys))


def _contact_ids(session: Session, client_id: int) -> dict[str, int]:
    """The client's contact rows by their id in the flow file."""
    rows = session.execute(
        select(Contact.key, Contact.id).where(Contact.client_id == client_id)
    ).all()
    return {key: contact_id for key, contact_id in rows}
