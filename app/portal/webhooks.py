"""/portal/webhooks: a client's people add and remove the URLs its events go to, and see the
deliveries their system refused. Its own endpoints only: another client's is 404. The secret of
a new endpoint is shown on the page that answers the form, once, and never again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from app.accounts.deps import ClientUser, CsrfChecked
from app.accounts.service import Principal
from app.deps import DatabaseDep, Now, SettingsDep
from app.inbox.filters import MAX_ID
from app.inbox.queries import ClientFacts, NoClientError, client_facts
from app.portal.views import local
from app.web.pages import render
from app.webhooks.destinations import RefusedUrlError, destination
from app.webhooks.failures import EVENTS
from app.webhooks.service import (
    EndpointNotFoundError,
    EndpointView,
    FailureView,
    WebhookError,
    add_endpoint,
    list_endpoints,
    recent_failures,
    remove_endpoint,
)

router = APIRouter(prefix="/webhooks")
EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]
Csrf = Annotated[None, CsrfChecked]
DONE = {"removed": "The webhook is removed: nothing more will be sent to it."}


@dataclass(frozen=True)
class WebhooksView:
    client: ClientFacts
    endpoints: list[EndpointView]
    failures: list[FailureView]


def webhooks_view(session: Session, principal: Principal) -> WebhooksView:
    client = client_facts(session, principal)
    assert principal.client_id is not None  # client_facts found its client
    return WebhooksView(
        client,
        list_endpoints(session, client_id=principal.client_id),
        recent_failures(session, principal.client_id),
    )


@router.get("")
async def webhooks(
    request: Request, principal: ClientUser, database: DatabaseDep, done: str = ""
) -> Response:
    """The client's webhooks, the form to add one, and what was refused lately."""
    return await _page(request, principal, database, notice=DONE.get(done, ""))


@router.post("")
async def add_webhook(
    request: Request,
    principal: ClientUser,
    _csrf: Csrf,
    database: DatabaseDep,
    settings: SettingsDep,
    now: Now,
    url: Annotated[str, Form(max_length=2000)],
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Add a URL: the answer shows its signing secret, once."""
    chosen = [e for e in (events or []) if e]
    try:
        checked = await asyncio.to_thread(
            destination, url.strip(), local_ok=settings.webhooks_may_reach_this_machine
        )
    except RefusedUrlError as exc:
        return await _page(request, principal, database, problem=str(exc), url=url, status=422)
    client_id = principal.client_id

    def add(session: Session) -> str:
        if client_id is None:
            raise NoClientError("this account belongs to no client")
        return add_endpoint(session, client_id, checked, chosen, now)[1]

    try:
        secret = await database.run(add)
    except NoClientError:
        return render(request, "portal/not_found.html", 404)
    except WebhookError as exc:
        return await _page(request, principal, database, problem=str(exc), url=url, status=422)
    return render(request, "portal/webhook_added.html", url=checked.url, secret=secret)


@router.post("/{endpoint_id}/delete")
async def remove_webhook(
    request: Request,
    endpoint_id: EndpointId,
    principal: ClientUser,
    _csrf: Csrf,
    database: DatabaseDep,
) -> Response:
    """Stop sending to one of the client's URLs."""
    client_id = principal.client_id
    try:
        if client_id is None:
            raise EndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
        await database.run(lambda s: remove_endpoint(s, endpoint_id, client_id))
    except EndpointNotFoundError:
        return render(request, "portal/not_found.html", 404, what="webhook")
    return RedirectResponse("/portal/webhooks?done=removed", status_code=303)


async def _page(
    request: Request,
    principal: Principal,
    database: DatabaseDep,
    *,
    notice: str = "",
    problem: str = "",
    url: str = "",
    status: int = 200,
) -> Response:
    try:
        view = await database.run(lambda s: webhooks_view(s, principal))
    except NoClientError:
        return render(request, "portal/not_found.html", 404)
    zone = view.client.timezone
    return render(
        request, "portal/webhooks.html", status, view=view, events=EVENTS, notice=notice,
        problem=problem, url=url, local=lambda at: local(at, _zone(zone)) if at else "",
    )  # fmt: skip


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)
