"""`nightdesk purge` and `nightdesk messages verify`: the operator's side of a client's records."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer
from sqlalchemy import select

from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import make_database, sessions_for_command
from app.messages.models import Message
from app.messages.timeline import timeline_check, verify_timeline
from app.records.dispatcher import twilio_for
from app.records.purge import (
    delete_owed_recordings,
    due_records,
    purge_client,
    retaining_clients,
)
from app.records.retention import purge_before
from app.settings import get_settings
from app.timeutil import utcnow


def purge(
    client: Annotated[str | None, typer.Option(help="Only this client (its id, the slug)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what is due, and change nothing")
    ] = False,
) -> None:
    """Purge messages, calls and recording links older than each client's `retention.days`,
    as the dispatcher does every hour; each batch leaves its counts in the audit log.

    Age alone decides: a message nobody acknowledged is purged too, and counted as such.
    Running it again, or beside the dispatcher, purges nothing twice.
    """
    settings = get_settings()
    database = make_database(settings.database_url)
    flows, now = FlowStore(), utcnow()
    try:
        clients = database.run_blocking(lambda s: retaining_clients(s, flows, client))
        if client is not None and not clients:
            known = database.run_blocking(
                lambda s: s.scalar(select(Client.id).where(Client.slug == client))
            )
            why = "has no retention setting in its flow" if known else "is not a client"
            typer.echo(f"nightdesk purge: {client} {why}", err=True)
            raise typer.Exit(1)
        if not clients:
            typer.echo("no client has a retention setting: nothing to purge")
            return
        for each in clients:
            before = purge_before(each.retention, now).isoformat(timespec="seconds")
            if dry_run:
                plan = database.run_blocking(
                    partial(due_records, client=each, now=now, limit=1_000_000)
                )
                counts = plan.counts()
                line = f"{each.slug}: would purge {_counts(counts)} (taken before {before})"
                if plan.never_acknowledged:
                    ids = ", ".join(str(i) for i in plan.never_acknowledged)
                    line += f"; never acknowledged: {ids}"
                typer.echo(line)
                continue
            totals = purge_client(database, each, now, by="nightdesk purge")
            typer.echo(f"{each.slug}: purged {_counts(totals)} (taken before {before})")
        if not dry_run:
            gone = delete_owed_recordings(database, twilio_for(settings)(), now)
            if gone:
                typer.echo(f"{gone} recording{'s' if gone != 1 else ''} deleted at Twilio")
    finally:
        database.close()


def _counts(counts: dict[str, int]) -> str:
    if not counts.get("messages") and not counts.get("calls"):
        return "nothing"
    text = f"{counts['messages']} messages, {counts['calls']} calls, "
    text += f"{counts['recording_links']} recording links"
    if counts.get("recordings_to_delete_at_twilio"):
        text += f", {counts['recordings_to_delete_at_twilio']} recordings to delete at Twilio"
    if counts.get("never_acknowledged"):
        text += f" ({counts['never_acknowledged']} never acknowledged)"
    return text


def messages_verify(message_id: int) -> None:
    """Check that a message's timeline is as it was written: exit 0 when intact, 1 naming the
    first event that is not."""
    sessions = sessions_for_command(get_settings().database_url)
    with sessions() as session:
        if session.get(Message, message_id) is None:
            typer.echo(f"nightdesk messages verify: no message {message_id}", err=True)
            raise typer.Exit(1)
        check = timeline_check(message_id, verify_timeline(session, message_id))
    if check.broken_at is None:
        typer.echo(f"message {message_id}: intact ({check.events} events, head {check.head})")
        return
    broken = check.broken_at
    typer.echo(f"message {message_id}: BROKEN at event {broken.seq}: {broken.reason}")
    raise typer.Exit(1)
