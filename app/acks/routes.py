"""What contacts answer through Twilio and the web: an SMS reply, the notification call's turns,
and the email's acknowledge link. Thin: verify, parse, hand to the service, render.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from app.acks import inbound, notify_call, pages
from app.acks.inbound import Verdict
from app.acks.webhooks import NotifyCallTurn, SmsReceived
from app.db import Database
from app.deps import DatabaseDep, FlowsDep, Now, SettingsDep
from app.dispatch import texts
from app.dispatch.status import DeliveryNotFoundError
from app.messages.queries import MessageNotFoundError
from app.telephony.recordings import RecordingUnavailableError, stream_recording
from app.telephony.signature import TwilioForm, public_base, query_int
from app.telephony.twiml import render_goodbye, twiml

log = logging.getLogger("nightdesk.acks")
router = APIRouter(tags=["notifications"], default_response_class=Response)
# Links are secrets: keep them out of caches and other sites' logs.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def get_call_urls(request: Request) -> notify_call.NotifyCallUrls:
    return notify_call.NotifyCallUrls(public_base(request))


CallUrlsDep = Annotated[notify_call.NotifyCallUrls, Depends(get_call_urls)]


@router.post("/twilio/sms")
async def sms_received(
    form: TwilioForm, database: DatabaseDep, flows: FlowsDep, now: Now
) -> Response:
    """The number's "A message comes in" webhook: a contact acknowledging, STOP, HELP..."""
    sms = SmsReceived.parse(form)
    text = await database.run(lambda session: inbound.answer_sms(session, flows, sms, now))
    response = MessagingResponse()
    if text is not None:
        response.message(text)
    return twiml(str(response))


@router.post("/twilio/notify/voice")
async def call_answered(
    request: Request,
    form: TwilioForm,
    database: DatabaseDep,
    flows: FlowsDep,
    urls: CallUrlsDep,
    now: Now,
) -> Response:
    """The notification call was answered: the TwiML Twilio fetches for it."""
    turn, d = NotifyCallTurn.parse(form), query_int(request, "d")
    return await _call_twiml(
        database, lambda session: notify_call.answered(session, flows, d, turn, urls, now)
    )


@router.post("/twilio/notify/voice/key")
async def call_key(
    request: Request,
    form: TwilioForm,
    database: DatabaseDep,
    flows: FlowsDep,
    urls: CallUrlsDep,
    now: Now,
) -> Response:
    """A key pressed on the notification call, or the Redirect after its Gather heard none."""
    turn, d = NotifyCallTurn.parse(form), query_int(request, "d")
    silence, tries = bool(query_int(request, "silence", 0)), query_int(request, "tries", 1)
    return await _call_twiml(
        database,
        lambda session: notify_call.key_pressed(
            session, flows, d, turn, urls, silence=silence, tries=tries, now=now
        ),
    )


@router.get("/ack/{token}", response_class=HTMLResponse)
async def ack_link(request: Request, token: str, database: DatabaseDep) -> HTMLResponse:
    """The email's link: a page that takes the message with one click (opening it doesn't)."""
    links = request.app.state.links
    try:
        standing = await database.run(lambda session: inbound.link_standing(session, links, token))
    except MessageNotFoundError:
        return HTMLResponse(pages.NOT_FOUND_PAGE, status_code=404, headers=PRIVATE)
    page = pages.confirm_page if standing.verdict is Verdict.open else pages.outcome_page
    return HTMLResponse(page(standing), headers=PRIVATE)


@router.post("/ack/{token}", response_class=HTMLResponse)
async def ack_link_taken(
    request: Request, token: str, database: DatabaseDep, flows: FlowsDep, now: Now
) -> HTMLResponse:
    """The page's form: acknowledge for the contact the email was sent to."""
    links = request.app.state.links
    try:
        standing = await database.run(
            lambda session: inbound.take_by_link(session, flows, links, token, now)
        )
    except MessageNotFoundError:
        return HTMLResponse(pages.NOT_FOUND_PAGE, status_code=404, headers=PRIVATE)
    return HTMLResponse(pages.outcome_page(standing), headers=PRIVATE)


@router.get("/ack/{token}/recording")
async def ack_link_recording(
    request: Request, token: str, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """The email's recording link: the caller's voice, streamed from Twilio through Nightdesk
    for as long as the acknowledge link works."""
    links = request.app.state.links
    try:
        url = await database.run(lambda session: inbound.linked_recording(session, links, token))
    except MessageNotFoundError:
        return HTMLResponse(pages.NOT_FOUND_PAGE, status_code=404, headers=PRIVATE)
    except inbound.LinkExpiredError:
        return HTMLResponse(pages.RECORDING_EXPIRED_PAGE, status_code=410, headers=PRIVATE)
    try:
        return await stream_recording(settings, url)
    except RecordingUnavailableError:
        return HTMLResponse(pages.RECORDING_UNAVAILABLE_PAGE, status_code=502, headers=PRIVATE)


async def _call_twiml(database: Database, work: Callable[[Session], str]) -> Response:
    """TwiML from `work`; a call about a delivery we don't have ends politely."""
    try:
        return twiml(await database.run(work))
    except (DeliveryNotFoundError, MessageNotFoundError):
        log.warning("notify_call_for_unknown_delivery")
        return twiml(render_goodbye(texts.CALL_GONE))
