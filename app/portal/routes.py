"""/portal: thin routes for a client's signed-in people (`ClientUser`); their own client only.

Another client's message is 404, exactly like one that does not exist. The three actions post
to the message's own page, so a person whose session ended signs in again and lands back there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.accounts.deps import ClientUser, CsrfChecked
from app.deps import DatabaseDep, FlowsDep, Now, SettingsDep
from app.inbox.filters import MAX_ID
from app.inbox.queries import NoClientError, NoRecordingError, find_recording
from app.inbox.schemas import NOTE_LENGTH
from app.messages.models import message_ref
from app.messages.queries import MessageNotFoundError
from app.portal.service import Action, follow_up, message_list, message_page
from app.portal.views import (
    DONE,
    STATUSES,
    URGENCIES,
    ListForm,
    local,
    read_where,
    timeline_line,
)
from app.portal.webhooks import router as webhooks_router
from app.telephony.recordings import RecordingUnavailableError, stream_recording
from app.web.pages import render

router = APIRouter(prefix="/portal", include_in_schema=False)
router.include_router(webhooks_router)
MessageId = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND = (MessageNotFoundError, NoRecordingError, NoClientError)

# After the principal, not in `dependencies=`: a signed-out visitor is sent to sign in first.
Csrf = Annotated[None, CsrfChecked]


@router.get("", response_class=HTMLResponse)
async def messages(
    request: Request,
    principal: ClientUser,
    database: DatabaseDep,
    now: Now,
    first: Annotated[str, Query(alias="from", max_length=20)] = "",
    last: Annotated[str, Query(alias="to", max_length=20)] = "",
    urgency: Annotated[str, Query(max_length=20)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    waiting: Annotated[str, Query(max_length=5)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The client's messages, newest first, with filters."""
    form = ListForm(first, last, urgency, status, bool(waiting), cursor)
    try:
        view = await database.run(lambda s: message_list(s, principal, form, now))
    except NOT_FOUND:
        return _not_found(request)
    older = form.query(view.page.next) if view.page.next else None
    return render(
        request, "portal/messages.html", view=view, form=form, older=older,
        statuses=STATUSES, urgencies=URGENCIES, local=lambda at: local(at, view.zone),
        ref=message_ref,
    )  # fmt: skip


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def message(
    request: Request,
    message_id: MessageId,
    principal: ClientUser,
    database: DatabaseDep,
    now: Now,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """One message: what the caller said, its recording, its timeline, who has read it, and
    what to do next."""
    try:
        view = await database.run(lambda s: message_page(s, principal, message_id, now))
    except NOT_FOUND:
        return _not_found(request)
    return render(
        request, "portal/message.html", view=view, m=view.message, ref=message_ref(message_id),
        done=DONE.get(done, ""), note_length=NOTE_LENGTH,
        local=lambda at: local(at, view.zone),
        timeline=[timeline_line(entry, view.zone) for entry in view.message.timeline],
        read_where=read_where,
    )  # fmt: skip


@router.post("/messages/{message_id}")
async def act(
    request: Request,
    message_id: MessageId,
    principal: ClientUser,
    _csrf: Csrf,
    database: DatabaseDep,
    flows: FlowsDep,
    now: Now,
    action: Annotated[Action, Form()],
    note: Annotated[str, Form(max_length=NOTE_LENGTH)] = "",
    called_back: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Acknowledge, record a call back, or close; then back to the message."""
    text = note.strip() or None
    try:
        await database.run(
            lambda s: follow_up(s, flows, principal, message_id, action, note=text,
                                called_back=bool(called_back), now=now)
        )  # fmt: skip
    except NOT_FOUND:
        return _not_found(request)
    return RedirectResponse(f"/portal/messages/{message_id}?done={action}", status_code=303)


@router.get("/messages/{message_id}/recording")
async def recording(
    request: Request,
    message_id: MessageId,
    principal: ClientUser,
    database: DatabaseDep,
    settings: SettingsDep,
    now: Now,
) -> Response:
    """The caller's recording, played through Nightdesk (Twilio's URL never reaches the page)."""
    try:
        url = await database.run(
            lambda s: find_recording(s, principal, message_id, via="portal-audio", now=now)
        )
    except NOT_FOUND:
        return _not_found(request)
    try:
        return await stream_recording(settings, url)
    except RecordingUnavailableError:
        return render(request, "portal/unavailable.html", 502)


def _not_found(request: Request) -> Response:
    return render(request, "portal/not_found.html", 404)
