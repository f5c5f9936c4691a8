"""Managing a client's webhook endpoints: add (with a secret shown once), list, remove, resume."""

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
from app.webhooks.failures import EVENTS, url_problem
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookStatus


class WebhookError(Exception):
    """A request about endpoints that can't be done, with the reason for the person asking."""


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
    session: Session, client: str, url: str, events: Sequence[str], now: dt.datetime
) -> tuple[int, str]:
    """A new endpoint for the client; returns its id and its secret (to show once)."""
    client_id = session.scalar(select(Client.id).where(Client.slug == client))
    if client_id is None:
        raise WebhookError(f"no client {client!r}")
    if problem := url_problem(url):
        raise WebhookError(problem)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise WebhookError(f"unknown event {unknown[0]!r} (events: {', '.join(EVENTS)})")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        client_id=client_id, url=url, events=sorted(set(events)), secret=secret, created_at=now
    )
    session.add(endpoint)
    session.flush()
    return endpoint.id, secret


def list_endpoints(session: Session, client: str | None = None) -> list[EndpointView]:
    """Every endpoint (or one client's) with what it owes and how it is faring."""
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


def remove_endpoint(session: Session, endpoint_id: int) -> str:
    """Remove an endpoint and the events it was still owed; returns its URL."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookError(f"no webhook endpoint {endpoint_id}")
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    session.delete(endpoint)
    return endpoint.url


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
