"""Twilio's webhooks for console calls, under /twilio/console/ (signature checked by
`TwilioForm`): the PA's phone leg (whisper, key, status), their conference, and the caller's
way into it and out of it. Thin: parse, run a unit of work, answer TwiML or act on Twilio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import APIRouter, Request, Response

from app.console import answering
from app.console.phone import PhoneError
from app.console.routes import ConsoleDep, UrlsDep
from app.deps import DatabaseDep, FlowsDep, Now
from app.telephony.signature import BadWebhookError, TwilioForm, query, query_int
from app.telephony.twiml import twiml

log = logging.getLogger("nightdesk.console")
router = APIRouter(prefix="/twilio/console", tags=["twilio"], default_response_class=Response)


def _call_sid(form: TwilioForm) -> str:
    sid = form.get("CallSid", "").strip()
    if not sid:
        raise BadWebhookError("CallSid is required")
    return sid


@router.post("/whisper")
async def whisper(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep, urls: UrlsDep
) -> Response:
    """The PA picked up their phone: whose caller it is, and 1 to take it."""
    entry, offer, sid = query_int(request, "entry"), query_int(request, "offer"), _call_sid(form)
    return twiml(
        await database.run(
            lambda session: answering.whisper(session, flows, entry, offer, sid, urls)
        )
    )


@router.post("/accept")
async def accept(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep, urls: UrlsDep
) -> Response:
    """The PA's key (or silence): 1 joins them to the caller's conference."""
    entry, offer = query_int(request, "entry"), query_int(request, "offer")
    digits = None if "silence" in query(request) else form.get("Digits")
    return twiml(
        await database.run(
            lambda session: answering.accept(session, flows, entry, offer, digits, urls)
        )
    )


@router.post("/leg-status", status_code=204)
async def leg_status(request: Request, form: TwilioForm, database: DatabaseDep, now: Now) -> None:
    """The PA's phone leg's status callback."""
    entry, offer, sid = query_int(request, "entry"), query_int(request, "offer"), _call_sid(form)
    status = form.get("CallStatus", "")
    await database.run(
        lambda session: answering.leg_status(session, entry, offer, sid, status, now)
    )


@router.post("/conference", status_code=204)
async def conference(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep,
    console: ConsoleDep, urls: UrlsDep, now: Now,
) -> None:  # fmt: skip
    """The PA's conference status callback: once the PA has joined, move the caller in."""
    entry, offer, sid = query_int(request, "entry"), query_int(request, "offer"), _call_sid(form)
    event = form.get("StatusCallbackEvent", "")
    outcome = await database.run(
        lambda session: answering.conference_event(session, entry, offer, event, sid, now)
    )
    if isinstance(outcome, answering.Move):
        try:
            await asyncio.to_thread(
                console.phone.move_caller, outcome.queue_name, outcome.call_sid,
                urls.connect(entry),
            )  # fmt: skip
            return
        except PhoneError:
            await database.run(lambda session: answering.caller_gone(session, flows, entry, now))
    if outcome is not None:  # the caller has gone: tell the PA, and let them go
        with contextlib.suppress(PhoneError):
            await asyncio.to_thread(console.phone.play, sid, answering.caller_left_twiml())


@router.post("/connect")
async def connect(request: Request, _form: TwilioForm, urls: UrlsDep) -> Response:
    """The caller's new TwiML once taken out of the queue: the PA's conference."""
    return twiml(answering.connect(query_int(request, "entry"), urls))


@router.post("/after")
async def after(
    request: Request, _form: TwilioForm, database: DatabaseDep, flows: FlowsDep
) -> Response:
    """The caller's conference has ended: the client's goodbye."""
    entry = query_int(request, "entry")
    return twiml(await database.run(lambda session: answering.after(session, flows, entry)))
