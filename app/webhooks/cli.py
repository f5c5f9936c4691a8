"""`nightdesk webhooks …`: a client's URLs for events (message taken, acknowledged, …)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_session_factory, transaction
from app.settings import get_settings
from app.timeutil import utcnow
from app.webhooks.destinations import RefusedUrlError, destination
from app.webhooks.failures import EVENTS
from app.webhooks.service import (
    WebhookError,
    add_endpoint,
    list_endpoints,
    remove_endpoint,
    resume_endpoint,
)

webhooks_app = typer.Typer(help="Webhooks to a client's own systems (Standard Webhooks).")


def _sessions() -> sessionmaker[Session]:
    return make_session_factory(make_engine(get_settings().database_url))


def _fail(command: str, exc: WebhookError) -> typer.Exit:
    typer.echo(f"nightdesk webhooks {command}: {exc}", err=True)
    return typer.Exit(1)


@webhooks_app.command("add")
def webhooks_add(
    client: str,
    url: str,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help=f"Only these events (default: all): {', '.join(EVENTS)}"),
    ] = None,
) -> None:
    """Send CLIENT's events to URL, signed; prints the signing secret alone on the last line:
    it is shown only once."""
    unknown = [e for e in event or [] if e not in EVENTS]
    if unknown:  # before resolving the URL's name, which may take a while
        raise _fail("add", WebhookError(f"unknown event {unknown[0]!r} ({', '.join(EVENTS)})"))
    try:
        checked = destination(url, local_ok=get_settings().webhooks_may_reach_this_machine)
    except RefusedUrlError as exc:
        raise _fail("add", WebhookError(str(exc))) from None
    try:
        with transaction(_sessions()) as session:
            endpoint_id, secret = add_endpoint(session, client, checked, event or [], utcnow())
    except WebhookError as exc:
        raise _fail("add", exc) from None
    which = ", ".join(event) if event else "every event"
    typer.echo(f"webhook {endpoint_id} for {client}: {which} to {url}")
    typer.echo(
        "Its signing secret, shown only this once (verify with a Standard Webhooks library):"
    )
    typer.echo(secret)


@webhooks_app.command("list")
def webhooks_list(
    client: Annotated[str | None, typer.Option(help="Only this client")] = None,
) -> None:
    """Every endpoint: its events, whether it is failing or paused, and what it is owed."""
    with transaction(_sessions()) as session:
        views = list_endpoints(session, client)
    if not views:
        typer.echo("no webhooks")
    for view in views:
        since = f" since {view.since:%Y-%m-%d %H:%M} UTC" if view.since else ""
        events = ",".join(view.events) or "all events"
        typer.echo(f"{view.id:<4} {view.client:<20} {view.state}{since}  {view.url}  ({events})")
        if view.pending or view.failed:
            typer.echo(
                f"     {view.pending} waiting, {view.failed} given up; "
                f"last error: {view.last_error or '-'}"
            )


@webhooks_app.command("remove")
def webhooks_remove(endpoint_id: int) -> None:
    """Stop sending to an endpoint; the events it was still owed are dropped."""
    try:
        with transaction(_sessions()) as session:
            url = remove_endpoint(session, endpoint_id)
    except WebhookError as exc:
        raise _fail("remove", exc) from None
    typer.echo(f"removed webhook {endpoint_id} ({url})")


@webhooks_app.command("resume")
def webhooks_resume(endpoint_id: int) -> None:
    """Send to a paused endpoint again; the events it missed follow at once."""
    try:
        with transaction(_sessions()) as session:
            owed = resume_endpoint(session, endpoint_id, utcnow())
    except WebhookError as exc:
        raise _fail("resume", exc) from None
    typer.echo(f"resumed webhook {endpoint_id}; {owed} event{'s' if owed != 1 else ''} to send")
