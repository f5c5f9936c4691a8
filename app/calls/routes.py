"""Twilio's voice webhooks. Thin: verify, parse, hand to the CallService, return TwiML.

Each request's work runs as one transaction, committed before the TwiML goes back to Twilio.
If the database is unreachable, the caller still gets a voicemail that needs no database.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.calls.service import TROUBLE_PROMPT, CallService, Urls
from app.calls.webhooks import VoiceWebhook
from app.db import in_transaction
from app.telephony.signature import public_base, query, query_int, twilio_webhook
from app.telephony.twiml import render_goodbye, twiml

log = logging.getLogger("nightdesk.calls")
router = APIRouter(prefix="/twilio")


def urls_for(request: Request) -> Urls:
    return Urls(public_base(request))


async def answer_or_voicemail(
    request: Request, hook: VoiceWebhook, work: Callable[[Session, dt.datetime], str]
) -> Response:
    """TwiML from `work`, or, if the database fails us, a voicemail that needs none."""
    try:
        return twiml(await in_transaction(request, work))
    except (SQLAlchemyError, LookupError):
        log.exception("call_step_failed", extra={"call_sid": hook.call_sid})
        return twiml(urls_for(request).voicemail(TROUBLE_PROMPT, hook.caller, hook.called))


def calls(request: Request) -> CallService:
    service: CallService = request.app.state.calls
    return service


@twilio_webhook(router, "/voice")
async def incoming_call(request: Request, form: dict[str, str]) -> Response:
    """The number's "A call comes in" webhook."""
    hook = VoiceWebhook.parse(form)
    urls = urls_for(request)
    return await answer_or_voicemail(
        request, hook, lambda session, now: calls(request).answer(session, hook, urls, now)
    )


@twilio_webhook(router, "/voice/step")
async def call_step(request: Request, form: dict[str, str]) -> Response:
    """Gather, Record, Dial and Enqueue actions, and the Redirect after a silent Gather."""
    hook = VoiceWebhook.parse(form)
    turn, silence = query_int(request, "turn"), query_int(request, "silence", 0)
    urls = urls_for(request)
    return await answer_or_voicemail(
        request,
        hook,
        lambda session, now: calls(request).step(session, hook, turn, bool(silence), urls, now),
    )


@twilio_webhook(router, "/voice/hold")
async def hold_music(request: Request, form: dict[str, str]) -> Response:
    """Enqueue's waitUrl, requested again each time its document finishes playing."""
    hook = VoiceWebhook.parse(form)
    document = await in_transaction(
        request, lambda session, _now: calls(request).hold(session, hook, hook.queue_seconds)
    )
    return twiml(document)


@twilio_webhook(router, "/voice/status")
async def call_status(request: Request, form: dict[str, str]) -> Response:
    """The number's call status callback."""
    hook = VoiceWebhook.parse(form)
    await in_transaction(request, lambda session, now: calls(request).status(session, hook, now))
    return Response(status_code=204)


@twilio_webhook(router, "/voice/recording")
async def recording_ready(request: Request, form: dict[str, str]) -> Response:
    """recordingStatusCallback: a recording is complete (the fallback adds who called whom)."""
    hook = VoiceWebhook.parse(form, query(request))
    fallback = "called" in query(request)
    await in_transaction(
        request,
        lambda session, now: calls(request).recording(session, hook, now, fallback=fallback),
    )
    return Response(status_code=204)


@twilio_webhook(router, "/voice/transcription")
async def transcription_ready(request: Request, form: dict[str, str]) -> Response:
    """transcribeCallback: the text of a recording."""
    hook = VoiceWebhook.parse(form, query(request))
    await in_transaction(
        request, lambda session, now: calls(request).transcription(session, hook, now)
    )
    return Response(status_code=204)


@twilio_webhook(router, "/fallback")
async def fallback(request: Request, form: dict[str, str]) -> Response:
    """The number's fallback URL: a voicemail with no database at all, so nothing is lost."""
    hook = VoiceWebhook.parse(form)
    log.error("fallback_used", extra={"call_sid": hook.call_sid})
    return twiml(urls_for(request).voicemail(TROUBLE_PROMPT, hook.caller, hook.called))


@twilio_webhook(router, "/fallback/done")
async def fallback_done(_request: Request, _form: dict[str, str]) -> Response:
    """After the fallback's recording: thank the caller. The recording callback saves it."""
    return twiml(render_goodbye("Thank you. Your message will be passed on. Goodbye."))
