"""Webhooks and links for notifications: SMS replies, status callbacks, the notification call,
and the email's acknowledge link. Thin: verify, parse, hand to the service, render.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from app.clients.flows import FlowStore
from app.db import in_transaction
from app.dispatch import inbound, notify_call, pages, texts
from app.dispatch.acks import MessageNotFoundError
from app.dispatch.inbound import DeliveryNotFoundError, Verdict
from app.dispatch.webhooks import NotifyCallTurn, SmsReceived, StatusReport
from app.telephony.signature import public_base, query_int, twilio_webhook
from app.telephony.twiml import render_goodbye, twiml

log = logging.getLogger("nightdesk.dispatch")
router = APIRouter(tags=["notifications"])
# Links are secrets: keep them out of caches and other sites' logs.
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def flows(request: Request) -> FlowStore:
    store: FlowStore = request.app.state.flows
    return store


def call_urls(request: Request) -> notify_call.NotifyCallUrls:
    return notify_call.NotifyCallUrls(public_base(request))


@twilio_webhook(router, "/twilio/sms")
async def sms_received(request: Request, form: dict[str, str]) -> Response:
    """The number's "A message comes in" webhook: a contact acknowledging, STOP, HELP..."""
    sms = SmsReceived.parse(form)
    text = await in_transaction(
        request, lambda session, now: inbound.answer_sms(session, flows(request), sms, now)
    )
    response = MessagingResponse()
    if text is not None:
        response.message(text)
    return twiml(str(response))


@twilio_webhook(router, "/twilio/sms/status")
async def sms_status(request: Request, form: dict[str, str]) -> Response:
    """The status callback of a notification SMS."""
    return await _apply_status(request, query_int(request, "d"), StatusReport.for_sms(form))


@twilio_webhook(router, "/twilio/notify/voice/status")
async def call_status(request: Request, form: dict[str, str]) -> Response:
    """The status callback of a notification call."""
    return await _apply_status(request, query_int(request, "d"), StatusReport.for_call(form))


@twilio_webhook(router, "/twilio/notify/voice")
async def call_answered(request: Request, form: dict[str, str]) -> Response:
    """The notification call was answered: the TwiML Twilio fetches for it."""
    turn, urls, d = NotifyCallTurn.parse(form), call_urls(request), query_int(request, "d")
    return await _call_twiml(
        request,
        lambda session, now: notify_call.answered(session, flows(request), d, turn, urls, now),
    )


@twilio_webhook(router, "/twilio/notify/voice/key")
async def call_key(request: Request, form: dict[str, str]) -> Response:
    """A key pressed on the notification call, or the Redirect after its Gather heard none."""
    turn, urls, d = NotifyCallTurn.parse(form), call_urls(request), query_int(request, "d")
    silence, tries = query_int(request, "silence", 0), query_int(request, "tries", 1)
    return await _call_twiml(
        request,
        lambda session, now: notify_call.key_pressed(
            session, flows(request), d, turn, urls, silence=bool(silence), tries=tries, now=now
        ),
    )


@router.get("/ack/{token}", response_class=HTMLResponse)
async def ack_link(request: Request, token: str) -> HTMLResponse:
    """The email's link: a page that takes the message with one click (opening it doesn't)."""
    links = request.app.state.links
    try:
        standing = await in_transaction(
            request, lambda session, _now: inbound.link_standing(session, links, token)
        )
    except MessageNotFoundError:
        return HTMLResponse(pages.NOT_FOUND_PAGE, status_code=404, headers=PRIVATE)
    page = pages.confirm_page if standing.verdict is Verdict.open else pages.outcome_page
    return HTMLResponse(page(standing), headers=PRIVATE)


@router.post("/ack/{token}", response_class=HTMLResponse)
async def ack_link_taken(request: Request, token: str) -> HTMLResponse:
    """The page's form: acknowledge for the contact the email was sent to."""
    links = request.app.state.links
    try:
        standing = await in_transaction(
            request,
            lambda session, now: inbound.take_by_link(session, flows(request), links, token, now),
        )
    except MessageNotFoundError:
        return HTMLResponse(pages.NOT_FOUND_PAGE, status_code=404, headers=PRIVATE)
    return HTMLResponse(pages.outcome_page(standing), headers=PRIVATE)


async def _apply_status(request: Request, delivery_id: int, report: StatusReport) -> Response:
    """204 even for a delivery we don't know: nothing Twilio could send again would help."""
    try:
        await in_transaction(
            request,
            lambda session, now: inbound.apply_status(
                session, flows(request), delivery_id, report, now
            ),
        )
    except DeliveryNotFoundError:
        log.warning(
            "status_for_unknown_delivery", extra={"delivery_id": delivery_id, "sid": report.sid}
        )
    return Response(status_code=204)


async def _call_twiml(request: Request, work: Callable[[Session, dt.datetime], str]) -> Response:
    """TwiML from `work`; a call about a delivery we don't have ends politely."""
    try:
        return twiml(await in_transaction(request, work))
    except (DeliveryNotFoundError, MessageNotFoundError):
        log.warning("notify_call_for_unknown_delivery", extra={"path": request.url.path})
        return twiml(render_goodbye(texts.CALL_GONE))
