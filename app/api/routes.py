"""/api/v1: thin routes over `app.inbox`. A client's key (or user) sees its own client only;
another client's message or call is 404, exactly like one that does not exist."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBearer

from app.accounts.deps import ApiCaller
from app.api.export import csv_lines
from app.api.schemas import CloseRequest, MessagePage
from app.api.webhooks import router as webhooks_router
from app.db import Database, Work
from app.deps import DatabaseDep, FlowsDep, Now, SettingsDep
from app.flows.schema import Urgency
from app.inbox.filters import MAX_ID, BadCursorError, Cursor, MessageFilter, utc
from app.inbox.queries import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    CallNotFoundError,
    NoClientError,
    NoRecordingError,
    check_timeline,
    client_overview,
    find_call,
    find_message,
    find_messages,
    find_reads,
    find_recording,
)
from app.inbox.schemas import CallDetail, ClientOverview
from app.inbox.service import acknowledge_message, close_message
from app.messages.models import MessageStatus
from app.messages.queries import MessageNotFoundError
from app.messages.schemas import MessageDetail, MessageOut, ReadOut, TimelineCheck
from app.telephony.recordings import RecordingUnavailableError, stream_recording

# Declares the scheme in the OpenAPI document (the "Authorize" button in /docs); the key itself
# is checked by ApiCaller, which also accepts a signed-in session.
bearer = HTTPBearer(auto_error=False, description="A client API key: `nightdesk api-keys create`")

router = APIRouter(
    prefix="/api/v1",
    tags=["api"],
    dependencies=[Security(bearer)],
    responses={
        401: {"description": "No API key (or signed-in session), or a revoked one"},
        404: {"description": "No such thing among the caller's own: another client's is 404 too"},
    },
)
router.include_router(webhooks_router)
T = TypeVar("T")
EXPORT_PAGE = 500
NOT_FOUND = (MessageNotFoundError, CallNotFoundError, NoRecordingError, NoClientError)

MessageId = Annotated[int, Path(ge=1, le=MAX_ID, examples=[1])]


def message_filter(
    status: Annotated[MessageStatus | None, Query()] = None,
    urgency: Annotated[Urgency | None, Query()] = None,
    since: Annotated[
        dt.datetime | None, Query(description="Taken at or after (ISO 8601; no offset: UTC)")
    ] = None,
    until: Annotated[
        dt.datetime | None, Query(description="Taken before (ISO 8601; no offset: UTC)")
    ] = None,
) -> MessageFilter:
    try:
        since, until = (utc(at) if at else None for at in (since, until))
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return MessageFilter(
        status=status.value if status else None,
        urgency=urgency.value if urgency else None,
        since=since,
        until=until,
    )


Filters = Annotated[MessageFilter, Depends(message_filter)]


@router.get("/messages", response_model=MessagePage)
async def list_messages(
    caller: ApiCaller,
    database: DatabaseDep,
    filters: Filters,
    now: Now,
    cursor: Annotated[str | None, Query(max_length=200, description="From `next_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> MessagePage:
    """The caller's messages, newest first, a page at a time."""
    after = _cursor(cursor)
    page = await _found(
        database,
        lambda s: find_messages(s, caller, filters, after, limit, via="api", now=now),
    )
    return MessagePage(items=page.items, next_cursor=page.next.encode() if page.next else None)


@router.get(
    "/messages.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "A header row, then messages"}},
)
async def export_messages(
    caller: ApiCaller, database: DatabaseDep, filters: Filters, now: Now
) -> StreamingResponse:
    """Every matching message as CSV, newest first, safe to open in a spreadsheet."""

    async def lines() -> AsyncIterator[str]:
        yield csv_lines([], header=True)
        after: Cursor | None = None
        while True:
            page = await database.run(
                partial(find_messages, principal=caller, filters=filters, after=after,
                        limit=EXPORT_PAGE, via="export", now=now)
            )  # fmt: skip
            yield csv_lines(page.items)
            if page.next is None:
                return
            after = page.next

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="messages.csv"'},
    )


@router.get("/messages/{message_id}", response_model=MessageDetail)
async def show_message(
    message_id: MessageId, caller: ApiCaller, database: DatabaseDep, now: Now
) -> MessageDetail:
    """One message, with its call's timeline and its own."""
    return await _found(database, lambda s: find_message(s, caller, message_id, via="api", now=now))


@router.get("/messages/{message_id}/reads", response_model=list[ReadOut])
async def message_reads(
    message_id: MessageId, caller: ApiCaller, database: DatabaseDep
) -> list[ReadOut]:
    """Who has read the message (what the caller said, their number, the recording), when, and
    where from, oldest first: kept for clients in privacy mode; empty for the others."""
    return await _found(database, lambda s: find_reads(s, caller, message_id))


@router.get("/messages/{message_id}/verify", response_model=TimelineCheck)
async def verify_message(
    message_id: MessageId, caller: ApiCaller, database: DatabaseDep
) -> TimelineCheck:
    """Whether the message's timeline (who was told what, and when) is as it was written:
    each event carries the hash of its content and of the event before it. Keep `head` to
    check later that nothing was rewritten since."""
    return await _found(database, lambda s: check_timeline(s, caller, message_id))


@router.get(
    "/messages/{message_id}/recording",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/mpeg": {}}, "description": "The caller's recording"},
        502: {"description": "Twilio did not hand the recording over"},
    },
)
async def message_recording(
    message_id: MessageId,
    caller: ApiCaller,
    database: DatabaseDep,
    settings: SettingsDep,
    now: Now,
) -> StreamingResponse:
    """The message's recording (MP3), fetched from Twilio by Nightdesk."""
    url = await _found(
        database, lambda s: find_recording(s, caller, message_id, via="api-audio", now=now)
    )
    try:
        return await stream_recording(settings, url)
    except RecordingUnavailableError as exc:
        raise HTTPException(502, f"the recording is unavailable: {exc}") from None


@router.post("/messages/{message_id}/acknowledge", response_model=MessageOut)
async def acknowledge(
    message_id: MessageId, caller: ApiCaller, database: DatabaseDep, flows: FlowsDep, now: Now
) -> MessageOut:
    """Take the message: its escalation stops, as when a contact replies to the SMS."""
    return await _found(
        database,
        lambda s: acknowledge_message(s, flows, caller, message_id, via="api", now=now),
    )


@router.post("/messages/{message_id}/close", response_model=MessageOut)
async def close(
    message_id: MessageId,
    body: CloseRequest,
    caller: ApiCaller,
    database: DatabaseDep,
    flows: FlowsDep,
    now: Now,
) -> MessageOut:
    """Nothing more to do: the message is closed (and acknowledged, if nobody had yet)."""
    return await _found(
        database,
        lambda s: close_message(
            s, flows, caller, message_id, note=body.note, called_back=body.called_back,
            via="api", now=now,
        ),
    )  # fmt: skip


@router.get("/calls/{sid}", response_model=CallDetail)
async def show_call(
    sid: Annotated[str, Path(max_length=64, examples=["CA00000000000000000000000000000001"])],
    caller: ApiCaller,
    database: DatabaseDep,
) -> CallDetail:
    """A call to one of the caller's numbers, with its timeline."""
    return await _found(database, lambda s: find_call(s, caller, sid))


@router.get("/client", response_model=ClientOverview)
async def show_client(
    caller: ApiCaller, database: DatabaseDep, flows: FlowsDep, now: Now
) -> ClientOverview:
    """The caller's own client: its numbers, contacts, and who is on call now."""
    return await _found(database, lambda s: client_overview(s, flows, caller, now))


async def _found(database: Database, work: Work[T]) -> T:
    """Run a unit of work; what the caller may not see is simply not found."""
    try:
        return await database.run(work)
    except NOT_FOUND as exc:
        raise HTTPException(404, str(exc)) from None


def _cursor(token: str | None) -> Cursor | None:
    try:
        return Cursor.decode(token) if token else None
    except BadCursorError as exc:
        raise HTTPException(400, str(exc)) from None
