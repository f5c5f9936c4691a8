"""Flow versions in the database: syncing `voice_flows/` in, and reading them back for calls."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from threading import Lock

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.clients.models import Client, Contact, FlowVersion, PhoneNumber
from app.db import Database
from app.flows.loader import LoadedFlow, parse_flow
from app.flows.schema import Flow

log = logging.getLogger("nightdesk.clients")


class FlowStore:
    """Parsed flows by version id. A version never changes once stored, so the cache never lies."""

    def __init__(self) -> None:
        self._flows: dict[int, Flow] = {}
        self._lock = Lock()

    def get(self, session: Session, version_id: int) -> Flow:
        flow = self._flows.get(version_id)
        if flow is None:
            version = session.get(FlowVersion, version_id)
            if version is None:
                raise LookupError(f"flow version {version_id} does not exist")
            flow = parse_flow(version.source, version.path).flow
            with self._lock:
                self._flows[version_id] = flow
        return flow

    def warm(self, database: Database) -> int:
        """Parse every client's current flow now, from the calling thread (the dispatcher's, as
        it starts): otherwise the first call to each client, and the summaries' first look at
        every client, parse inside a unit of work, on the event loop, holding up every caller
        (a few milliseconds a flow, seconds for a thousand clients). Returns how many."""
        parsed = 0
        for version_id, source, path in database.run_blocking(_current_flows):
            if version_id in self._flows:
                continue
            try:
                flow = parse_flow(source, path).flow
            except Exception:  # stored by an older release; `get` will say so where it matters
                log.warning("flow_not_parsed", extra={"flow_version": version_id}, exc_info=True)
                continue
            with self._lock:
                self._flows[version_id] = flow
            parsed += 1
        return parsed

    def parsed(self) -> list[int]:
        """The flow versions parsed so far."""
        return list(self._flows)

    def for_client(self, session: Session, client_id: int | None) -> Flow | None:
        """The client's current flow: contacts, numbers and voice as they are now."""
        client = session.get(Client, client_id) if client_id is not None else None
        if client is None or client.active_flow_id is None:
            return None
        return self.get(session, client.active_flow_id)


def _current_flows(session: Session) -> list[tuple[int, str, str]]:
    rows = session.execute(
        select(FlowVersion.id, FlowVersion.source, FlowVersion.path).join(
            Client, Client.active_flow_id == FlowVersion.id
        )
    )
    return [(row.id, row.source, row.path) for row in rows]


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def sync_flows(session: Session, loaded: list[LoadedFlow]) -> SyncReport:
    """Make the database match these (already checked) flow files; calls in progress keep theirs."""
    report = SyncReport()
    for item in loaded:
        flow = item.flow
        client = session.scalars(select(Client).where(Client.slug == flow.client)).first()
        if client is None:
            client = Client(slug=flow.client, name=flow.name, timezone=flow.timezone)
            session.add(client)
            session.flush()
            report.created.append(flow.client)
        client.name, client.timezone = flow.name, flow.timezone
        client.private = flow.private
        version = session.scalars(
            select(FlowVersion).where(
                FlowVersion.client_id == client.id, FlowVersion.sha256 == item.sha256
            )
        ).first()
        if version is None:
            version = FlowVersion(
                client_id=client.id, sha256=item.sha256, path=str(item.path), source=item.source
            )
            session.add(version)
            session.flush()
        if client.active_flow_id == version.id:
            if flow.client not in report.created:
                report.unchanged.append(flow.client)
        elif flow.client not in report.created:
            report.updated.append(flow.client)
        client.active_flow_id = version.id
        _sync_numbers(session, client, flow)
        _sync_contacts(session, client, flow)
        log.info("flow_synced", extra={"client": flow.client, "flow_version": version.id})
    return report


def _sync_numbers(session: Session, client: Client, flow: Flow) -> None:
    session.execute(
        delete(PhoneNumber).where(
            PhoneNumber.client_id == client.id, PhoneNumber.number.not_in(flow.numbers)
        )
    )
    for number in flow.numbers:
        row = session.get(PhoneNumber, number)
        if row is None:
            session.add(PhoneNumber(number=number, client_id=client.id))
        else:
            row.client_id = client.id


def _sync_contacts(session: Session, client: Client, flow: Flow) -> None:
    rows = {
        c.key: c for c in session.scalars(select(Contact).where(Contact.client_id == client.id))
    }
    for contact in flow.contacts:
        row = rows.pop(contact.id, None) or Contact(client_id=client.id, key=contact.id)
        row.name, row.phone, row.email = contact.name, contact.phone, contact.email
        row.channels = [c.value for c in contact.channels]
        row.active = True
        session.add(row)
    for gone in rows.values():  # kept for the history of past deliveries, but never paged again
        gone.active = False
