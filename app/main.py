"""create_app(): the FastAPI application with its routers, middleware and shared services."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from app.accounts.deps import MaybeSignedIn, SignInRequiredError, sign_in_redirect
from app.accounts.routes import router as accounts_router
from app.acks.routes import router as acks_router
from app.api.docs import ASSETS_URL, swagger_assets
from app.api.docs import router as docs_router
from app.api.routes import router as api_router
from app.calls.routes import replays as call_replays
from app.calls.routes import router as calls_router
from app.calls.service import CallService
from app.clients.flows import FlowStore
from app.console.desk import make_console
from app.console.phone_routes import router as console_phone_router
from app.console.routes import router as console_router
from app.db import make_database
from app.dispatch.dispatcher import make_dispatcher, start_in_background
from app.dispatch.routes import replays as status_replays
from app.dispatch.routes import router as dispatch_router
from app.levels.metrics import SERVICE_LEVELS
from app.levels.routes import api_router as levels_api_router
from app.levels.routes import portal_router as levels_portal_router
from app.observability import LatencyMiddleware, configure_logging, configure_metrics
from app.ops.routes import router as ops_router
from app.portal.routes import router as portal_router
from app.records.dispatcher import add_retention
from app.sandbox_page.routes import router as sandbox_router
from app.settings import Settings, get_settings
from app.summaries.dispatcher import add_summaries
from app.telephony.sandbox.services import Sandboxes, start_sandboxes
from app.telephony.signature import BadWebhookError, TwilioSignatures
from app.telephony.spool import Spool
from app.timeutil import Clock, utcnow
from app.web.pages import render, static_files

log = logging.getLogger("nightdesk")


def create_app(
    settings: Settings | None = None, clock: Clock = utcnow, sandboxes: Sandboxes | None = None
) -> FastAPI:
    """Build the app; tests pass their own settings and a clock they can move.

    In development without a real Twilio account or SMTP server, texts, calls and email go to
    the sandbox (app/telephony/sandbox/services.py), logged as they are sent; `nightdesk demo`
    and `nightdesk call` start their own and pass it in, to print what was sent.
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    if sandboxes is None:
        sandboxes = start_sandboxes(settings, lambda line: log.info("sandbox_sent", extra={
            "what": line}))  # fmt: skip
    settings = sandboxes.settings
    configure_metrics(client_labels=settings.metrics_client_labels)
    database = make_database(settings.database_url)
    SERVICE_LEVELS.attach(database, clock)
    flows = FlowStore()
    console = make_console(settings, database, flows, clock)
    calls = CallService(flows, listeners=[console.recorder])
    replays = {**call_replays(calls), **status_replays(flows)}
    # The dispatcher notifies unless RUN_DISPATCHER is false; either way it replays the spool.
    dispatcher = add_retention(
        add_summaries(make_dispatcher(settings, database, flows, clock, replays)), settings
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (modules, models, flows' schema) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise pause the
        # server for tens of milliseconds now and then (a busy night's p99).
        gc.collect()
        gc.freeze()
        stop_dispatcher = start_in_background(dispatcher, settings.database_url)
        stop_console = console.start(settings.database_url)
        yield
        stop_console()
        await console.close()
        # Off the loop: the dispatcher may be waiting for the loop to write its last unit.
        await asyncio.to_thread(stop_dispatcher)
        database.close()
        sandboxes.close()

    # /docs is app.api.docs: Swagger UI served from here, not from a CDN; no ReDoc.
    app = FastAPI(
        title="Nightdesk", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.settings = settings
    app.state.database = database
    app.state.engine = database.engine
    app.state.clock = clock
    app.state.signatures = TwilioSignatures(
        settings.twilio_auth_token, settings.twilio_previous_auth_token
    )
    app.state.flows = flows
    app.state.links = dispatcher.links
    app.state.dispatcher = dispatcher
    app.state.console = console
    app.state.calls = calls
    app.state.spool = Spool(settings.spool_dir)
    app.state.sandboxes = sandboxes
    app.add_middleware(LatencyMiddleware)
    app.add_exception_handler(BadWebhookError, _bad_webhook)
    app.add_exception_handler(SignInRequiredError, _sign_in_first)
    # Twilio's webhooks first: they are nearly all the traffic, and each request walks the
    # routes in order until one matches.
    app.include_router(calls_router)
    app.include_router(dispatch_router)
    app.include_router(acks_router)
    app.mount("/static", static_files, name="static")
    app.mount(ASSETS_URL, swagger_assets, name="docs-assets")
    app.include_router(home_router)
    app.include_router(accounts_router)
    app.include_router(ops_router)
    app.include_router(api_router)
    app.include_router(docs_router)
    app.include_router(portal_router)
    app.include_router(levels_api_router)
    app.include_router(levels_portal_router)
    app.include_router(console_router)
    app.include_router(console_phone_router)
    app.include_router(sandbox_router)
    return app


async def _sign_in_first(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequiredError)
    return sign_in_redirect(exc)


home_router = APIRouter(include_in_schema=False)


@home_router.get("/", response_class=HTMLResponse)
async def home(request: Request, principal: MaybeSignedIn) -> HTMLResponse:
    """A page for a person who opens the service's address: what this is, where to go."""
    sandboxes: Sandboxes = request.app.state.sandboxes
    return render(request, "home.html", sandbox=sandboxes.running)


async def _bad_webhook(_request: Request, exc: Exception) -> JSONResponse:
    """A signed webhook that doesn't say what we need: 400, with the reason."""
    return JSONResponse({"detail": str(exc)}, status_code=400)
