"""create_app(): the FastAPI application with its routers, middleware and shared services."""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.calls.routes import router as calls_router
from app.calls.service import CallService
from app.clients.flows import FlowStore
from app.db import make_engine, make_transactions
from app.dispatch.dispatcher import make_dispatcher, start_in_background
from app.dispatch.routes import router as dispatch_router
from app.observability import (
    LatencyMiddleware,
    configure_logging,
    configure_metrics,
    note_request,
)
from app.ops.routes import router as ops_router
from app.settings import Settings, get_settings
from app.telephony.signature import TwilioSignatures, TwilioWebhook
from app.timeutil import Clock, utcnow


def create_app(settings: Settings | None = None, clock: Clock = utcnow) -> FastAPI:
    """Build the app; tests pass their own settings and a clock they can move."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    configure_metrics(client_labels=settings.metrics_client_labels)
    engine = make_engine(settings.database_url)
    transactions = make_transactions(engine)
    flows = FlowStore()
    dispatcher = make_dispatcher(settings, transactions.sessions, flows, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (modules, models, flows' schema) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise pause the
        # server for tens of milliseconds now and then (a busy night's p99).
        gc.collect()
        gc.freeze()
        stop_dispatcher = (
            start_in_background(dispatcher, settings.database_url)
            if settings.run_dispatcher
            else None
        )
        yield
        if stop_dispatcher is not None:
            stop_dispatcher()
        transactions.close()
        engine.dispose()

    app = Nightdesk(title="Nightdesk", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = transactions.sessions
    app.state.transactions = transactions
    app.state.clock = clock
    app.state.signatures = TwilioSignatures(
        settings.twilio_auth_token, settings.twilio_previous_auth_token
    )
    app.state.flows = flows
    app.state.links = dispatcher.links
    app.state.dispatcher = dispatcher
    app.state.calls = CallService(flows)
    app.add_middleware(LatencyMiddleware)
    app.include_router(ops_router)
    app.include_router_and_webhooks(calls_router)
    app.include_router_and_webhooks(dispatch_router)
    return app


class Nightdesk(FastAPI):
    """FastAPI, with each POST to a Twilio webhook handed straight to its endpoint, and timed as
    LatencyMiddleware times every other request.

    Webhooks are nearly all of the traffic, and the middleware stack and route matching took
    about a sixth of a voice turn's CPU (`python -m bench.webhooks`). A webhook's endpoint
    (TwilioWebhook) answers its own refusals and failures, so it needs none of them.
    """

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self._webhooks: dict[str, TwilioWebhook] = {}

    def include_router_and_webhooks(self, router: APIRouter) -> None:
        """Include `router`, and answer its Twilio webhooks directly."""
        self.include_router(router)
        for route in router.routes:
            if isinstance(route, Route) and isinstance(route.app, TwilioWebhook):
                self._webhooks[route.path] = route.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        webhook = self._webhooks.get(scope["path"]) if scope["type"] == "http" else None
        if webhook is None or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        started = time.perf_counter()
        scope["app"] = self
        response = await webhook.respond(Request(scope, receive))
        await response(scope, receive, send)
        note_request(scope["path"], response.status_code, time.perf_counter() - started)
