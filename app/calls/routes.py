"""Twilio's voice webhooks. Thin: verify, parse, hand to the CallService, return TwiML.

Each request's work runs as one unit of work, committed before the TwiML goes back to Twilio.
Whatever fails in a voice turn (the database, a driver, a bug), the caller still gets a
voicemail that needs no database; a callback the database refuses is kept in the spool and
replayed when it answers again (`app.telephony.spool`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from app.calls.service import TROUBLE_PROMPT, CallService, Urls
from app.calls.webhooks import VoiceWebhook
from app.db import Database, Work
from app.telephony.signature import TwilioForm, parse_form, public_base, query_int
from app.telephony.spool import Replay, SpooledRequest, TwilioCallback
from app.telephony.twiml import render_goodbye, twiml

log = logging.getLogger("nightdesk.calls")
router = APIRouter(prefix="/twilio", tags=["twilio"], default_response_class=Response)


@dataclass(frozen=True)
class VoiceRequest:
    """A signed voice webhook, and what its turn needs."""

    hook: VoiceWebhook
    calls: CallService
    urls: Urls
    now: dt.datetime
    database: Database

    async def answer(self, work: Callable[[Session], str]) -> Response:
        """TwiML from `work`; if anything fails, a voicemail that needs no database."""
        try:
            return twiml(await self.database.run(work))
        except Exception:
            log.exception("call_step_failed", extra={"call_sid": self.hook.call_sid})
            hook = self.hook
            return twiml(self.urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called))


async def voice_request(request: Request, form: TwilioForm) -> VoiceRequest:
    """A voice route's one dependency (each costs a webhook more than its own SQL does)."""
    state = request.app.state
    hook, urls = VoiceWebhook.parse(form), Urls(public_base(request))
    return VoiceRequest(hook, state.calls, urls, state.clock(), state.database)


async def get_calls(request: Request) -> CallService:
    service: CallService = request.app.state.calls
    return service


Voice = Annotated[VoiceRequest, Depends(voice_request)]
CallsDep = Annotated[CallService, Depends(get_calls)]


@router.post("/voice")
async def incoming_call(voice: Voice) -> Response:
    """The number's "A call comes in" webhook."""
    return await voice.answer(
        lambda session: voice.calls.answer(session, voice.hook, voice.urls, voice.now)
    )


@router.post("/voice/step")
async def call_step(request: Request, voice: Voice) -> Response:
    """Gather, Record, Dial and Enqueue actions, and the Redirect after a silent Gather."""
    turn, silence = query_int(request, "turn"), bool(query_int(request, "silence", 0))
    hook, urls, now = voice.hook, voice.urls, voice.now
    return await voice.answer(
        lambda session: voice.calls.step(session, hook, turn, silence, urls, now)
    )


@router.post("/voice/hold")
async def hold_music(voice: Voice) -> Response:
    """Enqueue's waitUrl, requested again each time its document finishes playing."""
    hook, calls = voice.hook, voice.calls
    return twiml(
        await voice.database.run(lambda session: calls.hold(session, hook, hook.queue_seconds))
    )


@router.post("/voice/status", status_code=204)
async def call_status(callback: TwilioCallback, calls: CallsDep) -> None:
    """The number's call status callback."""
    await callback.apply(CallCallbacks(calls).status)


@router.post("/voice/recording", status_code=204)
async def recording_ready(callback: TwilioCallback, calls: CallsDep) -> None:
    """recordingStatusCallback: a recording is complete (the fallback adds who called whom)."""
    await callback.apply(CallCallbacks(calls).recording)


@router.post("/voice/transcription", status_code=204)
async def transcription_ready(callback: TwilioCallback, calls: CallsDep) -> None:
    """transcribeCallback: the text of a recording."""
    await callback.apply(CallCallbacks(calls).transcription)


@dataclass(frozen=True)
class CallCallbacks:
    """A call's callbacks as units of work, as of the moment Twilio sent them: the routes run
    them at once, and the spool's replayer later if the database refused them."""

    calls: CallService

    def status(self, callback: SpooledRequest) -> Work[None]:
        hook = VoiceWebhook.parse(callback.form)
        return lambda session: self.calls.status(session, hook, callback.received_at)

    def recording(self, callback: SpooledRequest) -> Work[None]:
        query = parse_form(callback.query)
        hook, fallback = VoiceWebhook.parse(callback.form, query), "called" in query
        return lambda session: self.calls.recording(
            session, hook, callback.received_at, fallback=fallback
        )

    def transcription(self, callback: SpooledRequest) -> Work[None]:
        hook = VoiceWebhook.parse(callback.form, parse_form(callback.query))
        return lambda session: self.calls.transcription(session, hook, callback.received_at)


def replays(calls: CallService) -> dict[str, Replay]:
    """The spooled call callbacks the replayer knows, by path."""
    callbacks = CallCallbacks(calls)
    return {
        f"{router.prefix}/voice/status": callbacks.status,
        f"{router.prefix}/voice/recording": callbacks.recording,
        f"{router.prefix}/voice/transcription": callbacks.transcription,
    }


@router.post("/fallback")
async def fallback(voice: Voice) -> Response:
    """The number's fallback URL: a voicemail with no database at all, so nothing is lost."""
    hook = voice.hook
    log.error("fallback_used", extra={"call_sid": hook.call_sid})
    return twiml(voice.urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called))


@router.post("/fallback/done")
async def fallback_done(_form: TwilioForm) -> Response:
    """After the fallback's recording: thank the caller. The recording callback saves it."""
    return twiml(render_goodbye("Thank you. Your message will be passed on. Goodbye."))
