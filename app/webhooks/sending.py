"""The dispatcher's webhooks module: claim due events under a lease, POST them signed, record.

Each URL is resolved and checked before every attempt, and the request goes to the address that
was checked (`destinations.py`): a private address is refused, as at registration.
Signed per the Standard Webhooks spec with its own library: `webhook-id` (the event's id, the
same on every retry), `webhook-timestamp` (seconds), `webhook-signature: v1,<base64 HMAC-SHA256
of "id.timestamp.body">`. A refusal is retried on the spec's schedule (`failures.py`); a URL
failing for a day is paused, its events kept, and the client's summary recipients told.
"""

from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import Database
from app.timeutil import as_utc
from app.webhooks.destinations import RefusedUrlError, Resolver, destination, resolve
from app.webhooks.failures import after_failure, delivered, paused_notice
from app.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookStatus

log = logging.getLogger("nightdesk.webhooks")

LEASE = dt.timedelta(seconds=60)
BATCH = 50
POSTS = 4  # in flight at once: each waits on someone else's server
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "Nightdesk-Webhooks/1"


class QueueEmail(Protocol):
    """Owes an email in the caller's transaction, once per `key` (the dispatch outbox's)."""

    def __call__(
        self, session: Session, address: str, subject: str, text: str, key: str, now: dt.datetime
    ) -> object: ...


@dataclass(frozen=True)
class _Post:
    delivery_id: int
    url: str
    secret: str
    event_id: str
    body: str


@dataclass(frozen=True)
class _Result:
    status: int | None  # the receiver's HTTP status, None when there was no answer
    error: str | None


def make_http() -> httpx.Client:
    """The client webhooks are sent with: no redirects followed, a short timeout."""
    return httpx.Client(timeout=TIMEOUT, follow_redirects=False, headers={"user-agent": USER_AGENT})


@dataclass
class SendWebhooks:
    database: Database
    flows: FlowStore
    http: httpx.Client
    queue_email: QueueEmail
    local_ok: bool = False  # loopback receivers: development and the sandbox only
    resolver: Resolver = resolve
    name: str = "webhooks"
    # At most twice a second: a client's system hears within a second or so, and a busy night's
    # dispatcher, cycling at each commit, doesn't look for events at every one.
    every: dt.timedelta = dt.timedelta(seconds=0.5)
    batch: int = BATCH
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(POSTS, thread_name_prefix="webhook"),
        repr=False,
    )

    def run(self, now: dt.datetime) -> int:
        posts = self.database.run_blocking(lambda session: _claim(session, now, self.batch))
        if not posts:
            return 0
        results = list(self._pool.map(lambda post: self._post(post, now), posts))

        def record(session: Session) -> None:
            for post, result in zip(posts, results, strict=True):
                self._record(session, post, result, now)

        self.database.run_blocking(record)
        return len(posts)

    def _post(self, post: _Post, now: dt.datetime) -> _Result:
        signature = Webhook(post.secret).sign(post.event_id, now, post.body)
        headers = {
            "content-type": "application/json",
            "webhook-id": post.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        try:  # checked again at each delivery: the name may resolve somewhere else by now
            checked = destination(post.url, local_ok=self.local_ok, resolver=self.resolver)
        except RefusedUrlError as exc:
            return _Result(None, f"refused: {exc}"[:500])
        url, host, extensions = checked.pinned()
        try:
            response = self.http.post(
                url, content=post.body.encode(), headers={**headers, **host}, extensions=extensions
            )
        except httpx.HTTPError as exc:
            return _Result(None, f"{type(exc).__name__}: {exc}"[:500])
        if delivered(response.status_code):
            return _Result(response.status_code, None)
        return _Result(response.status_code, f"HTTP {response.status_code}")

    def _record(self, session: Session, post: _Post, result: _Result, now: dt.datetime) -> None:
        delivery = session.get(WebhookDelivery, post.delivery_id, with_for_update=True)
        if delivery is None:
            return  # its endpoint was removed meanwhile
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
        if endpoint is None:
            return
        delivery.lease_until, delivery.response_status = None, result.status
        if result.error is None:
            delivery.status, delivery.delivered_at, delivery.error = (
                WebhookStatus.delivered,
                now,
                None,
            )
            endpoint.failing_since, endpoint.last_success_at = None, now
            return
        delivery.error = endpoint.last_error = result.error
        endpoint.failing_since = endpoint.failing_since or now
        decision = after_failure(delivery.attempts, as_utc(endpoint.failing_since), now)
        log.warning(
            "webhook_refused",
            extra={
                "endpoint_id": endpoint.id,
                "delivery_id": delivery.id,
                "status": result.status,
                "attempt": delivery.attempts,
            },
        )
        if decision.pause and endpoint.paused_at is None:
            endpoint.paused_at = now
            self._tell_client(session, endpoint, now)
        if decision.retry_at is None and endpoint.paused_at is None:
            delivery.status = WebhookStatus.failed  # this one event, refused all day: given up
        else:  # a paused URL keeps its events for when it is resumed
            delivery.status, delivery.due_at = WebhookStatus.pending, decision.retry_at or now

    def _tell_client(self, session: Session, endpoint: WebhookEndpoint, now: dt.datetime) -> None:
        """An email to the client's summary recipients: the URL is paused, and how to resume."""
        client = session.get(Client, endpoint.client_id)
        flow = self.flows.for_client(session, endpoint.client_id)
        addresses = flow.summary_addresses() if flow else []
        since = as_utc(endpoint.failing_since or now)
        log.warning("webhook_paused", extra={"endpoint_id": endpoint.id, "told": len(addresses)})
        subject, text = paused_notice(
            client.name if client else "", endpoint.url, since, endpoint.last_error
        )
        for index, (_contact, address) in enumerate(addresses):
            key = f"webhook-paused:{endpoint.id}:{now:%Y%m%dT%H%M%S}:{index}"
            self.queue_email(session, address, subject, text, key, now)


_NOW = bindparam("now", type_=WebhookDelivery.due_at.type)
_CLAIMABLE = (  # built once: the dispatcher asks every cycle
    select(WebhookDelivery, WebhookEndpoint)
    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    .where(
        or_(
            and_(WebhookDelivery.status == WebhookStatus.pending, WebhookDelivery.due_at <= _NOW),
            and_(
                WebhookDelivery.status == WebhookStatus.sending,
                WebhookDelivery.lease_until < _NOW,
            ),
        ),
        WebhookEndpoint.paused_at.is_(None),
    )
    .order_by(WebhookDelivery.due_at, WebhookDelivery.id)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True, of=WebhookDelivery)
)


def _claim(session: Session, now: dt.datetime, batch: int) -> list[_Post]:
    """Due events of URLs that are not paused, at most `batch`, leased to this worker."""
    rows = session.execute(_CLAIMABLE, {"now": now, "batch": batch}).all()
    posts = []
    for delivery, endpoint in rows:
        delivery.status, delivery.lease_until = WebhookStatus.sending, now + LEASE
        delivery.attempts += 1
        posts.append(
            _Post(delivery.id, endpoint.url, endpoint.secret, delivery.event_id, delivery.body)
        )
    return posts
