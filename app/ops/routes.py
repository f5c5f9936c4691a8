"""Liveness, readiness and Prometheus metrics for whoever runs Nightdesk."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db import Database
from app.dispatch.dispatcher import Dispatcher
from app.observability import REGISTRY

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/livez")
async def livez(request: Request, response: Response) -> dict[str, str | None]:
    """The process is alive and its dispatcher keeps cycling; 503 when the dispatcher has not
    finished a cycle for five minutes, so a supervisor (a liveness probe) restarts the process.
    Not readiness: webhooks still work then, and a load balancer should keep sending them."""
    dispatcher: Dispatcher = request.app.state.dispatcher
    last = dispatcher.last_cycle_at
    body = {"dispatcher_last_cycle": last.isoformat() if last else None}
    if dispatcher.stalled(request.app.state.clock()):
        response.status_code = 503
        return {"status": "dispatcher stalled", **body}
    return {"status": "ok", **body}


@router.get("/readyz")
async def readyz(request: Request, response: Response) -> dict[str, str]:
    """The database answers; a load balancer sends traffic only when it does."""

    database: Database = request.app.state.database
    try:  # a unit of work like any other, so it waits its turn rather than for SQLite's lock
        await database.run(lambda session: session.execute(text("SELECT 1")))
    except SQLAlchemyError as exc:
        response.status_code = 503
        return {"status": "unavailable", "database": type(exc).__name__}
    return {"status": "ok", "database": "ok"}


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics; with NIGHTDESK_METRICS_TOKEN set, only for `Authorization: Bearer
    <token>` (401 otherwise)."""
    token: str = request.app.state.settings.metrics_token
    if token and not bearer_matches(request.headers.get("authorization", ""), token):
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    # Off the event loop: some figures (service levels) are read from the database.
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an Authorization header carries this bearer token (compared in constant time)."""
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
