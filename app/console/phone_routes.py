"""Twilio's webhooks for console calls, under /twilio/console/ (signature checked by
`TwilioForm`): the PA's phone leg (whisper, key, status), their conference, and the caller's
way into it and out of it. Thin: parse, run a unit of work, answer TwiML or act on Twilio.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import replace

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from app.calls.routes import Voice
from app.console import answering, transferring
from app.console.phone import PhoneError
from app.console.routes import ConsoleDep, UrlsDep, take_off_hold
from app.console.voice import render_contact_joins, render_say_goodbye, render_transfer_whisper
from app.deps import DatabaseDep, FlowsDep, Now
from app.flows.schema import Speech
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


@router.post("/browser")
async def browser(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep, urls: UrlsDep
) -> Response:
    """The TwiML App's Voice URL: a PA's browser placed the call (`Device.connect` with the
    entry and offer as parameters, which Twilio sends as form fields) into their conference."""
    entry = _number(request, form, "entry")
    offer = _number(request, form, "offer")
    sid = _call_sid(form)
    identity = next(
        (form.get(name, "") for name in ("From", "Caller", "To")
         if form.get(name, "").startswith("client:")), "",
    )  # fmt: skip
    return twiml(
        await database.run(
            lambda session: answering.browser_leg(session, flows, entry, offer, identity, sid, urls)
        )
    )


def _number(request: Request, form: TwilioForm, name: str) -> int:
    """A whole number from the query (the sandbox) or the form (a TwiML App's parameters)."""
    if name in query(request):
        return query_int(request, name)
    value = form.get(name, "")
    if not value.isdigit() or len(value) > 12:
        raise BadWebhookError(f"{name} must be a whole number")
    return int(value)


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
async def leg_status(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep,
    console: ConsoleDep, now: Now,
) -> None:  # fmt: skip
    """The PA's phone leg's status callback."""
    entry, offer, sid = query_int(request, "entry"), query_int(request, "offer"), _call_sid(form)
    status = form.get("CallStatus", "")
    await database.run(
        lambda session: answering.leg_status(session, entry, offer, sid, status, now)
    )
    if status in answering.FINAL_STATUSES:
        await after_pa_left(console, database, flows, entry, sid, now)


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
    if event == "participant-leave":  # a browser leg's only word of its end
        await after_pa_left(console, database, flows, entry, sid, now)
        return
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


@router.post("/caller-joined", status_code=204)
async def caller_joined(request: Request, form: TwilioForm, database: DatabaseDep) -> None:
    """The caller's conference status callback: they are in, with the PA."""
    entry, sid = query_int(request, "entry"), _call_sid(form)
    conference_sid = form.get("ConferenceSid", "")[:64]
    if form.get("StatusCallbackEvent", "") == "participant-join" and conference_sid:
        await database.run(
            lambda session: answering.caller_joined(session, entry, sid, conference_sid)
        )


@router.post("/after")
async def after(
    request: Request, _form: TwilioForm, database: DatabaseDep, flows: FlowsDep
) -> Response:
    """The caller's conference has ended: the client's goodbye."""
    entry = query_int(request, "entry")
    return twiml(await database.run(lambda session: answering.after(session, flows, entry)))


# --- a warm transfer: the on-call contact's leg ---------------------------------------------


@router.post("/transfer/whisper")
async def transfer_whisper(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep, urls: UrlsDep
) -> Response:
    """The contact picked up: a transfer for this client, and 1 to take the caller."""
    entry, attempt, sid = (
        query_int(request, "entry"),
        query_int(request, "attempt"),
        _call_sid(form),
    )

    def unit(session: Session) -> str:
        transferring.note_contact_leg(session, entry, attempt, sid)
        found = transferring.attempt_of(session, flows, entry, attempt)
        if found is None or not transferring.contact_may_join(found):
            return render_say_goodbye(transferring.CALLER_GONE, Speech())
        accept = urls.transfer_accept(entry, attempt)
        silence = urls.transfer_silence(entry, attempt)
        return render_transfer_whisper(found.client_name, accept, silence, found.speech)

    return twiml(await database.run(unit))


@router.post("/transfer/accept")
async def transfer_accept(
    request: Request, form: TwilioForm, database: DatabaseDep, flows: FlowsDep, urls: UrlsDep
) -> Response:
    """The contact's key (or silence): 1 puts them into the PA's conference; anything else
    ends their leg, and with it the transfer."""
    entry, attempt = query_int(request, "entry"), query_int(request, "attempt")
    digits = None if "silence" in query(request) else form.get("Digits")
    found = await database.run(
        lambda session: transferring.attempt_of(session, flows, entry, attempt)
    )
    speech = found.speech if found else Speech()
    if not transferring.contact_keyed(found, digits):
        gone = not transferring.contact_may_join(found)
        return twiml(
            render_say_goodbye(transferring.CALLER_GONE if gone else transferring.DECLINED, speech)
        )
    return twiml(render_contact_joins(entry, urls.transfer_conference(entry, attempt), speech))


@router.post("/transfer/conference", status_code=204)
async def transfer_conference(
    request: Request, form: TwilioForm, database: DatabaseDep, console: ConsoleDep
) -> None:
    """The contact's conference events: their joining lets the PA brief them."""
    entry, attempt, sid = (
        query_int(request, "entry"),
        query_int(request, "attempt"),
        _call_sid(form),
    )
    if form.get("StatusCallbackEvent", "") != "participant-join":
        return
    briefing = await database.run(
        lambda session: transferring.contact_joined(session, entry, attempt, sid)
    )
    if briefing is not None:  # the PA may now leave by hanging up without ending the call
        try:
            await asyncio.to_thread(
                console.phone.keep_conference, briefing.conference_sid, briefing.pa_sid
            )
        except PhoneError:
            log.warning("pa_still_ends_conference", extra={"entry_id": entry})


@router.post("/transfer/status", status_code=204)
async def transfer_status(
    request: Request, form: TwilioForm, database: DatabaseDep, console: ConsoleDep, now: Now
) -> None:
    """The contact's leg's status callback: ending before the hand over brings the caller
    back to the PA, off hold."""
    entry, attempt, sid = (
        query_int(request, "entry"),
        query_int(request, "attempt"),
        _call_sid(form),
    )
    status = form.get("CallStatus", "")
    back = await database.run(
        lambda session: transferring.contact_leg_status(session, entry, attempt, sid, status, now)
    )
    if back is not None:
        await take_off_hold(console, back)


# --- the flow's voicemail -------------------------------------------------------------------


@router.post("/voicemail")
async def voicemail(request: Request, voice: Voice) -> Response:
    """The PA sent the caller on: the flow carries on from its queue step as if the caller had
    left the queue, down the path the flow gives for no PA (its message, its voicemail)."""
    entry = query_int(request, "entry")
    voice = replace(voice, hook=replace(voice.hook, queue_result="leave"))
    hook, calls, urls, now = voice.hook, voice.calls, voice.urls, voice.now

    def work(session: Session) -> str:
        turn = transferring.caller_turn(session, entry, hook.call_sid)
        if turn is None:
            return render_say_goodbye("Goodbye.", Speech())
        return calls.step(session, hook, turn, False, urls, now)

    return await voice.answer(work)


async def after_pa_left(
    console: ConsoleDep, database: DatabaseDep, flows: FlowsDep, entry: int, pa_sid: str,
    now: dt.datetime,
) -> None:  # fmt: skip
    """The PA's leg ended: if the contact was on the line, the PA hung up to hand over."""
    left = await database.run(lambda session: transferring.pa_left(session, entry, pa_sid))
    if left is None:
        return
    try:
        await asyncio.to_thread(
            console.phone.leave_with, left.conference_sid, left.caller_sid, left.contact_sid
        )
    except PhoneError:
        log.warning("hand_over_after_pa_left_failed", extra={"entry_id": entry})
        return
    await database.run(
        lambda session: transferring.handed_over(session, flows, entry, left.attempt, "", now)
    )
