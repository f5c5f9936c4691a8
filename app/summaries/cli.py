"""`nightdesk summaries send`: write the summaries that are due (or, with --now, each client's
summary up to now) and email them at once through the outbox."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Annotated

import typer

from app.clients.flows import FlowStore
from app.db import make_database
from app.dispatch.dispatcher import DEV_PUBLIC_URL
from app.dispatch.links import Links
from app.dispatch.models import DeliveryKind
from app.dispatch.senders import make_senders
from app.dispatch.sending import SendDeliveries
from app.settings import get_settings
from app.summaries.digest import local
from app.summaries.dispatcher import SAVES_IN_FLIGHT
from app.summaries.queries import email_states
from app.summaries.service import (
    Outcome,
    UnknownClientError,
    owed_summaries,
    queue_summary,
)
from app.timeutil import utcnow

summaries_app = typer.Typer(help="The morning summary emailed to each client.")


@summaries_app.command("send")
def summaries_send(
    client: Annotated[str | None, typer.Option(help="Only this client (its id)")] = None,
    now: Annotated[
        bool, typer.Option("--now", help="The summary up to now, even if it is not due yet")
    ] = False,
) -> None:
    """Send the summaries that are due, as the dispatcher would at each client's summary time.

    Each stretch of time is summarised once: running this again, or beside the dispatcher,
    sends nothing twice.
    """
    settings = get_settings()
    database = make_database(settings.database_url)
    flows = FlowStore()
    portal = settings.public_url.rstrip("/") or DEV_PUBLIC_URL
    instant = utcnow()
    until = instant if now else instant - SAVES_IN_FLIGHT
    try:
        try:
            owed = database.run_blocking(
                lambda session: owed_summaries(session, flows, until, client=client, on_demand=now)
            )
        except UnknownClientError as exc:
            typer.echo(f"nightdesk summaries send: {exc}", err=True)
            raise typer.Exit(1) from None
        if not owed:
            typer.echo("no summary is due" + ("" if now else " (--now sends one anyway)"))
            return
        keys: list[str] = []
        for summary in owed:
            write = partial(queue_summary, flows=flows, owed=summary, portal=portal, now=instant)
            outcome = database.run_blocking(write)
            keys += outcome.email_keys
            typer.echo(describe(outcome))
        if keys:
            sending = SendDeliveries(
                database,
                flows,
                make_senders(settings),
                Links(portal, settings.secret_key, utcnow, settings.ack_link_days),
                kinds=(DeliveryKind.summary,),
            )
            while sending.run(utcnow()):
                pass
            sending.wait_until(in_flight=0)
            states = database.run_blocking(lambda session: email_states(session, keys))
            typer.echo(_sent(states))
    finally:
        database.close()


def _sent(states: Counter[str]) -> str:
    sent = states["sent"] + states["delivered"]
    line = f"{sent} email{'s' if sent != 1 else ''} handed to the mail server"
    if states["pending"] or states["sending"]:
        line += f"; {states['pending'] + states['sending']} left for the dispatcher to retry"
    if states["failed"]:
        line += f"; {states['failed']} refused (see the dispatcher's log)"
    return line


def describe(outcome: Outcome) -> str:
    """One line for the operator about one client's summary."""
    owed = outcome.owed
    span = f"from {local(owed.period.start, owed.zone)} to {local(owed.period.end, owed.zone)}"
    count = f"{outcome.messages} message{'s' if outcome.messages != 1 else ''}"
    urgent = f" ({outcome.urgent} urgent)" if outcome.urgent else ""
    if outcome.status == "queued":
        who = f"{outcome.recipients} recipient{'s' if outcome.recipients != 1 else ''}"
        return f"{owed.client}: {count}{urgent} {span}, for {who}"
    if outcome.status == "skipped":
        return f"{owed.client}: no messages {span}; skipped, as its flow file asks"
    if outcome.status == "no_recipients":
        return f"{owed.client}: {count} {span}; no recipient has an email address"
    if outcome.status == "nothing_new":
        since = local(owed.period.start, owed.zone)
        return f"{owed.client}: nothing new since the last summary ({since}); nothing sent"
    return f"{owed.client}: already written by another worker"
