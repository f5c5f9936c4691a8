"""/api/v1/webhooks: a client registers, lists and removes the URLs its events go to, and sees
what was refused. Its own endpoints only: another client's is 404. A URL that is not https://
to a public address is refused with 422 and the reason."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from sqlalchemy.orm import Session

from app.accounts.deps import ApiCaller
from app.accounts.service import Principal
from app.deps import DatabaseDep, Now, SettingsDep
from app.inbox.filters import MAX_ID
from app.webhooks.destinations import RefusedUrlError, destination
from app.webhooks.schemas import (
    EndpointCreated,
    EndpointDetail,
    EndpointIn,
    EndpointOut,
    FailureOut,
)
from app.webhooks.service import (
    EndpointNotFoundError,
    EndpointView,
    FailureView,
    add_endpoint,
    find_endpoint,
    list_endpoints,
    recent_failures,
    remove_endpoint,
)

router = APIRouter(prefix="/webhooks")
EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]


def _client_id(caller: Principal) -> int:
    """Endpoints belong to a client: staff signed in have none of their own."""
    if caller.client_id is None:
        raise HTTPException(404, "this account belongs to no client")
    return caller.client_id


@router.get("", response_model=list[EndpointOut])
async def list_webhooks(caller: ApiCaller, database: DatabaseDep) -> list[EndpointOut]:
    """The caller's webhook endpoints and how each is faring."""
    client_id = _client_id(caller)
    views = await database.run(lambda s: list_endpoints(s, client_id=client_id))
    return [endpoint_out(view) for view in views]


@router.post(
    "",
    response_model=EndpointCreated,
    status_code=201,
    responses={422: {"description": "Not an https:// URL to a public address, or no such event"}},
)
async def add_webhook(
    body: EndpointIn, caller: ApiCaller, database: DatabaseDep, settings: SettingsDep, now: Now
) -> EndpointCreated:
    """Send the caller's events to a URL, signed; the answer carries its secret, this once."""
    client_id = _client_id(caller)
    try:  # resolving the name may take a while: off the event loop, outside any transaction
        checked = await asyncio.to_thread(
            destination, body.url, local_ok=settings.webhooks_may_reach_this_machine
        )
    except RefusedUrlError as exc:
        raise HTTPException(422, f"this URL can't receive webhooks: {exc}") from None

    def add(session: Session) -> tuple[EndpointView, str]:
        endpoint_id, secret = add_endpoint(session, client_id, checked, body.events, now)
        return find_endpoint(session, endpoint_id, client_id), secret

    view, secret = await database.run(add)
    return EndpointCreated(**endpoint_out(view).model_dump(), secret=secret)


@router.get("/{endpoint_id}", response_model=EndpointDetail)
async def show_webhook(
    endpoint_id: EndpointId, caller: ApiCaller, database: DatabaseDep
) -> EndpointDetail:
    """One endpoint, with the deliveries it refused lately."""
    client_id = _client_id(caller)
    try:
        view, failures = await database.run(
            lambda s: (
                find_endpoint(s, endpoint_id, client_id),
                recent_failures(s, client_id, endpoint_id),
            )
        )
    except EndpointNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    return EndpointDetail(
        **endpoint_out(view).model_dump(), recent_failures=[failure_out(f) for f in failures]
    )


@router.delete("/{endpoint_id}", status_code=204, response_class=Response)
async def remove_webhook(
    endpoint_id: EndpointId, caller: ApiCaller, database: DatabaseDep
) -> Response:
    """Stop sending to an endpoint; the events it was still owed are dropped."""
    client_id = _client_id(caller)
    try:
        await database.run(lambda s: remove_endpoint(s, endpoint_id, client_id))
    except EndpointNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


def endpoint_out(view: EndpointView) -> EndpointOut:
    return EndpointOut(
        id=view.id, url=view.url, events=view.events, state=view.state, since=view.since,
        pending=view.pending, failed=view.failed, last_error=view.last_error,
    )  # fmt: skip


def failure_out(failure: FailureView) -> FailureOut:
    return FailureOut(
        event_id=failure.event_id, event_type=failure.event_type, status=failure.status,
        attempts=failure.attempts, response_status=failure.response_status,
        error=failure.error, created_at=failure.created_at, next_try=failure.next_try,
    )  # fmt: skip
