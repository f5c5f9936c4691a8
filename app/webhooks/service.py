"""Managing a client's webhook endpoints: add (with a secret shown once), list, remove, resume;
and the deliveries that failed, for the client to see. Operators (the CLI) name a client by
slug and reach every endpoint; a client (the API, the portal) passes its own `client_id`, and
another client's endpoint is not found."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.clients.models import Client
from app.timeutil import as_utc
from app.webhooks.destinations import Destination
from app.webhooks.failures import EVENTS
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookStatus


class WebhookError(Exception):
    """A request about endpoints that can't be done, with the reason for the person asking."""


class EndpointNotFoundError(WebhookError, LookupError):
    """No such endpoint (or, for a client, none of theirs)."""


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as `nightdesk webhooks list` shows it (never its secret)."""

    id: int
    client: str
    url: str
    events: list[str]
    state: str  # active | failing | paused
    since: dt.datetime | None  # failing or paused since
    pending: int
    failed: int
    last_error: str | None


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def add_endpoint(
    session: Session,
    client: str | int,
    url: Destination,
    events: Sequence[str],
    now: dt.datetime,
) -> tuple[int, str]:
    """A new endpoint for the client (its slug, or its id), to a URL already checked and
    resolved (`destinations.destination`); returns its id and its secret (to show once)."""
    by = Client.slug if isinstance(client, str) else Client.id
    client_id = session.scalar(select(Client.id).where(by == client))
    if client_id is None:
        raise WebhookError(f"no client {client!r}")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise WebhookError(f"unknown event {unknown[0]!r} (events: {', '.join(EVENTS)})")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        client_id=client_id, url=url.url, events=sorted(set(events)), secret=secret,
        created_at=now,
    )  # fmt: skip
    session.add(endpoint)
    session.flush()
    return endpoint.id, secret


def list_endpoints(
    session: Session, client: str | None = None, client_id: int | None = None
) -> list[EndpointView]:
    """Every endpoint (or one client's, by slug or id) with what it owes and how it is faring."""
    counts = {
        (endpoint_id, status): count
        for endpoint_id, status, count in session.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count())
            .where(WebhookDelivery.status.in_((WebhookStatus.pending, WebhookStatus.failed)))
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)
        )
    }
    query = (
        select(WebhookEndpoint, Client.slug)
        .join(Client, Client.id == WebhookEndpoint.client_id)
        .order_by(Client.slug, WebhookEndpoint.id)
    )
    if client is not None:
        query = query.where(Client.slug == client)
    if client_id is not None:
        query = query.where(Client.id == client_id)
    views = []
    for endpoint, slug in session.execute(query):
        if endpoint.paused_at is not None:
            state, since = "paused", as_utc(endpoint.paused_at)
        elif endpoint.failing_since is not None:
            state, since = "failing", as_utc(endpoint.failing_since)
        else:
            state, since = "active", None
        views.append(
            EndpointView(
                endpoint.id,
                slug,
                endpoint.url,
                list(endpoint.events),
                state,
                since,
                counts.get((endpoint.id, WebhookStatus.pending), 0),
                counts.get((endpoint.id, WebhookStatus.failed), 0),
                endpoint.last_error,
            )
        )
    return views


def remove_endpoint(session: Session, endpoint_id: int, client_id: int | None = None) -> str:
    """Remove an endpoint and the events it was still owed; returns its URL. With `client_id`,
    only one of that client's."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or (client_id is not None and endpoint.client_id != client_id):
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    session.delete(endpoint)
    return endpoint.url


def find_endpoint(session: Session, endpoint_id: int, client_id: int) -> EndpointView:
    """One of the client's endpoints."""
    found = [v for v in list_endpoints(session, client_id=client_id) if v.id == endpoint_id]
    if not found:
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
    return found[0]


@dataclass(frozen=True)
class FailureView:
    """A delivery a receiver refused: given up, or waiting for its next try."""

    endpoint_id: int
    url: str
    event_id: str
    event_type: str
    status: str  # failed (given up) | pending (to be tried again at `next_try`)
    attempts: int
    response_status: int | None
    error: str | None
    created_at: dt.datetime
    next_try: dt.datetime | None


def recent_failures(
    session: Session, client_id: int, endpoint_id: int | None = None, limit: int = 20
) -> list[FailureView]:
    """The client's latest refused deliveries, newest first."""
    query = (
        select(WebhookDelivery, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookEndpoint.client_id == client_id,
            WebhookDelivery.error.is_not(None),
            WebhookDelivery.status.in_((WebhookStatus.failed, WebhookStatus.pending)),
        )
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    if endpoint_id is not None:
        query = query.where(WebhookEndpoint.id == endpoint_id)
    return [_failure(delivery, url) for delivery, url in session.execute(query)]


def _failure(delivery: WebhookDelivery, url: str) -> FailureView:
    pending = delivery.status == WebhookStatus.pending
    return FailureView(
        endpoint_id=delivery.endpoint_id,
        url=url,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        response_status=delivery.response_status,
        error=delivery.error,
        created_at=as_utc(delivery.created_at),
        next_try=as_utc(delivery.due_at) if pending else None,
    )


def resume_endpoint(session: Session, endpoint_id: int, now: dt.datetime) -> int:
    """Send to a paused endpoint again: the events it missed go now. Returns how many."""
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise WebhookError(f"no webhook endpoint {endpoint_id}")
    endpoint.paused_at = endpoint.failing_since = None
    owed = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == WebhookStatus.pending,
        )
        .values(due_at=now)
    )
    return int(owed.rowcount)  # type: ignore[attr-defined]
