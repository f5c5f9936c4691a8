"""The console's pages: /console for PAs (presence, the live queue), the screen pop of a call,
the supervisors' view, and the live events that keep them current. Thin: read the form, run
a unit of work, render or redirect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from app.accounts.deps import StaffUser, SupervisorUser
from app.accounts.service import Principal
from app.console import screens, service, transferring
from app.console.answering import ConsoleUrls
from app.console.browser import SANDBOX_SDK, Mode, identity_of
from app.console.desk import Console
from app.console.pages import render
from app.console.phone import Join, PhoneError, Ring
from app.console.presence import CHOOSABLE, State
from app.console.queries import waits_since
from app.console.queue import note_pa_leg, release
from app.console.script import Checked
from app.console.stats import ClientDay, today_by_client
from app.console.transfer import TRANSFER_REFUSALS, Monitor, TransferRefusal
from app.deps import DatabaseDep, FlowsDep, Now
from app.telephony.signature import public_base

log = logging.getLogger("nightdesk.console")
router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

PROBLEMS = {
    **{refusal.value: text for refusal, text in service.REFUSALS.items()},
    "busy": "Finish your call and its wrap-up first.",
    "phone": "Your phone could not be rung just now, so the caller is still waiting. Try again.",
    "gone": "That call is no longer yours.",
    **{refusal.value: text for refusal, text in TRANSFER_REFUSALS.items()},
    "transfer_phone": "The on-call contact's phone could not be rung just now; the caller is "
    "back with you. Try again, or finish with the message.",
    "hand_over": "The caller could not be handed over just now: try again.",
    "supervisor_phone": "Your account has no phone number to ring: ask an administrator to add "
    "one (nightdesk users add … --phone).",
    "monitor_phone": "Your phone could not be rung just now. Try again.",
    "phone_voicemail": "The caller could not be sent to voicemail just now: try again.",
    "voicemail": "The caller is leaving their message with the flow's voicemail.",
}

MONITORING = {
    Monitor.listen.value: "Your phone is ringing: answer it to listen in. Nobody hears you.",
    Monitor.whisper.value: "Your phone is ringing: answer it to whisper to the PA. "
    "The caller doesn't hear you.",
    Monitor.barge.value: "Your phone is ringing: answer it to join the call.",
}


def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def get_urls(request: Request) -> ConsoleUrls:
    return ConsoleUrls(public_base(request))


ConsoleDep = Annotated[Console, Depends(get_console)]
UrlsDep = Annotated[ConsoleUrls, Depends(get_urls)]


async def staff_form(principal: StaffUser, csrf_token: Annotated[str, Form()] = "") -> Principal:
    """A console form: signed-in staff first (or off to /login), then the session's CSRF token."""
    if not principal.csrf_token or not hmac.compare_digest(principal.csrf_token, csrf_token):
        raise HTTPException(403, "This form has expired: go back, reload the page and try again.")
    return principal


StaffForm = Annotated[Principal, Depends(staff_form)]


async def supervisor_form(
    principal: SupervisorUser, csrf_token: Annotated[str, Form()] = ""
) -> Principal:
    """A supervisor's form: a supervisor first (or off to /login), then the CSRF token."""
    return await staff_form(principal, csrf_token)


SupervisorForm = Annotated[Principal, Depends(supervisor_form)]


def _user_id(principal: Principal) -> int:
    assert principal.user_id is not None  # staff are people, never API keys
    return principal.user_id


def _to(path: str, problem: str | None = None) -> RedirectResponse:
    return RedirectResponse(f"{path}?problem={problem}" if problem else path, status_code=303)


# --- the PA's console ---------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def console_home(
    request: Request, user: StaffUser, database: DatabaseDep, console: ConsoleDep, now: Now,
    problem: str = "",
) -> HTMLResponse:  # fmt: skip
    """Presence and the live queue."""
    user_id = _user_id(user)
    snapshot = await database.run(lambda session: service.console_snapshot(session, user_id, now))
    browser = console.browser is not None
    context = {**screens.me(snapshot, user, now), **screens.queue(snapshot, user, now, browser)}
    return render(
        request, "console.html", problem=PROBLEMS.get(problem),
        supervisor=screens.is_supervisor(user), **context,
    )  # fmt: skip


@router.post("/presence")
async def set_presence(
    user: StaffForm, database: DatabaseDep, now: Now, state: Annotated[str, Form()]
) -> Response:
    """Available, on a break, or offline, as the PA chooses."""
    wanted = State(state) if state in {s.value for s in CHOOSABLE} else None
    if wanted is None:
        raise HTTPException(422, "Choose available, on a break or offline.")
    user_id = _user_id(user)
    done = await database.run(
        lambda session: service.choose_presence(session, user_id, wanted, now)
    )
    return _to("/console", None if done else "busy")


@router.post("/queue/{entry_id}/take")
async def take_call(
    entry_id: int, user: StaffForm, database: DatabaseDep, console: ConsoleDep, urls: UrlsDep,
    now: Now, answer: Annotated[str, Form(max_length=16)] = "phone",
) -> Response:  # fmt: skip
    """Take a waiting caller: exactly one PA wins; their phone rings with a whisper, or their
    browser places the call (`answer=browser`)."""
    user_id = _user_id(user)
    in_browser = answer == "browser" and console.browser is not None
    outcome = await database.run(
        lambda session: service.take_call(
            session, entry_id, user_id, now, needs_phone=not in_browser
        )
    )
    if isinstance(outcome, service.Refusal):
        return _to("/console", outcome.value)
    if in_browser:
        return RedirectResponse(f"/console/calls/{entry_id}?answer=browser", status_code=303)
    ring = Ring(
        to=outcome.pa_phone, from_=outcome.from_number,
        url=urls.whisper(entry_id, outcome.offer),
        status_callback=urls.leg_status(entry_id, outcome.offer),
    )  # fmt: skip
    try:
        sid = await asyncio.to_thread(console.phone.ring, ring)
    except PhoneError:
        await database.run(lambda session: release(session, entry_id, outcome.offer, now))
        return _to("/console", "phone")
    await database.run(lambda session: note_pa_leg(session, entry_id, outcome.offer, sid))
    return _to(f"/console/calls/{entry_id}")


# --- answering in the browser ------------------------------------------------------------------


@router.get("/voice-sdk.js")
async def voice_sdk(user: StaffUser, console: ConsoleDep) -> Response:
    """Twilio's Voice JavaScript SDK, from node_modules (npm, at install time), or the sandbox's
    stand-in for it: never from another host."""
    browser = console.browser
    if browser is None:
        raise HTTPException(404, "Answering in the browser is not set up here.")
    path = browser.sdk if browser.mode is Mode.twilio else SANDBOX_SDK
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


@router.get("/voice-token")
async def voice_token(user: StaffUser, console: ConsoleDep) -> JSONResponse:
    """An access token for this PA's browser to place calls with (one hour)."""
    if console.browser is None:
        raise HTTPException(404, "Answering in the browser is not set up here.")
    identity = identity_of(_user_id(user))
    token = console.browser.token(identity)
    return JSONResponse(
        {"token": token, "identity": identity}, headers={"Cache-Control": "no-store"}
    )


@router.post("/calls/{entry_id}/sandbox-connect")
async def sandbox_connect(
    entry_id: int, user: StaffForm, database: DatabaseDep, console: ConsoleDep, urls: UrlsDep,
    offer: Annotated[int, Form()],
) -> Response:  # fmt: skip
    """The sandbox's stand-in for `Device.connect`: the fake Twilio places the browser's leg
    into /twilio/console/browser, as Twilio does for a TwiML App."""
    if console.browser is None or console.browser.mode is not Mode.sandbox:
        raise HTTPException(404, "Only the sandbox places browser calls for the page.")
    user_id = _user_id(user)
    called = await database.run(lambda session: service.called_number(session, entry_id, user_id))
    if called is None:
        return JSONResponse({"ok": False, "problem": PROBLEMS["gone"]}, status_code=409)
    ring = Ring(
        to=f"client:{identity_of(user_id)}", from_=called, url=urls.browser(entry_id, offer),
        status_callback=urls.leg_status(entry_id, offer),
    )  # fmt: skip
    try:
        sid = await asyncio.to_thread(console.phone.ring, ring)
    except PhoneError:
        return JSONResponse({"ok": False, "problem": PROBLEMS["phone"]}, status_code=502)
    return JSONResponse({"ok": True, "call_sid": sid})


@router.post("/calls/{entry_id}/give-back")
async def give_back(
    entry_id: int, user: StaffForm, database: DatabaseDep, now: Now,
    offer: Annotated[int, Form()],
) -> Response:  # fmt: skip
    """The PA's browser couldn't place the call: the caller goes back in line for the next PA."""
    user_id = _user_id(user)
    await database.run(lambda session: service.give_back(session, entry_id, user_id, offer, now))
    return _to("/console", "phone")


# --- a call: the screen pop ---------------------------------------------------------------------


@router.get("/calls/{entry_id}", response_class=HTMLResponse)
async def call_screen(
    request: Request, entry_id: int, user: StaffUser, database: DatabaseDep, flows: FlowsDep,
    console: ConsoleDep, now: Now, problem: str = "", monitoring: str = "", answer: str = "",
) -> Response:  # fmt: skip
    """The client's answer phrase and instructions, who is on call, the caller's earlier
    messages, and the message form."""
    screen = await database.run(
        lambda session: service.call_screen(session, flows, entry_id, user, now)
    )
    if screen is None:  # not theirs any more: the caller went back to the queue, or left
        return _to("/console", "gone")
    return render(
        request, "call.html", screen=screen, problem=PROBLEMS.get(problem), problems={},
        monitoring=MONITORING.get(monitoring),
        browser_phone=answer == "browser" and console.browser is not None,
        **screens.me_context(screen.standing, None, user, now),
    )  # fmt: skip


@router.post("/calls/{entry_id}/message", response_class=HTMLResponse)
async def save_message(
    request: Request, entry_id: int, user: StaffForm, database: DatabaseDep, flows: FlowsDep,
    now: Now,
) -> Response:  # fmt: skip
    """Save the caller's message: it is dispatched exactly as a flow's message is."""
    form = await request.form()
    submitted = {name: str(value) for name, value in form.items() if isinstance(value, str)}
    user_id = _user_id(user)
    outcome = await database.run(
        lambda session: service.save_message(session, flows, entry_id, user_id, submitted, now)
    )
    if isinstance(outcome, service.Saved):
        return _to(f"/console/calls/{entry_id}")
    if isinstance(outcome, Checked):
        screen = await database.run(
            lambda session: service.call_screen(session, flows, entry_id, user, now)
        )
        assert screen is not None
        return render(
            request, "call.html", 422, screen=screen, problems=outcome.problems,
            values=submitted, problem=None,
            **screens.me_context(screen.standing, None, user, now),
        )  # fmt: skip
    return _to(f"/console/calls/{entry_id}", "gone")


@router.post("/calls/{entry_id}/hang-up")
async def hang_up(
    entry_id: int, user: StaffForm, database: DatabaseDep, console: ConsoleDep
) -> Response:
    """End the PA's phone leg (and with it the conference) from the console."""
    user_id = _user_id(user)
    sid = await database.run(lambda session: service.pa_leg_of(session, entry_id, user_id))
    if sid is None:
        return _to(f"/console/calls/{entry_id}", "gone")
    try:
        await asyncio.to_thread(console.phone.hang_up, sid)
    except PhoneError:
        return _to(f"/console/calls/{entry_id}", "phone")
    return _to(f"/console/calls/{entry_id}")


@router.post("/calls/{entry_id}/wrap-up")
async def wrap_up(
    entry_id: int, user: StaffForm, database: DatabaseDep, now: Now,
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:  # fmt: skip
    """Wrap-up notes kept; the PA is available again."""
    user_id = _user_id(user)
    done = await database.run(
        lambda session: service.finish_wrap_up(session, entry_id, user_id, notes, now)
    )
    return _to("/console") if done else _to(f"/console/calls/{entry_id}", "gone")


async def take_off_hold(console: Console, back: transferring.BackToPa) -> None:
    """The caller comes off hold, with the PA again (a caller who has gone can't)."""
    try:
        await asyncio.to_thread(console.phone.hold, back.conference_sid, back.caller_sid, False)
    except PhoneError:
        log.warning("caller_not_taken_off_hold", extra={"conference_sid": back.conference_sid})


# --- a warm transfer ---------------------------------------------------------------------------


@router.post("/calls/{entry_id}/transfer")
async def transfer(
    entry_id: int, user: StaffForm, database: DatabaseDep, flows: FlowsDep, console: ConsoleDep,
    urls: UrlsDep, now: Now,
) -> Response:  # fmt: skip
    """Transfer the caller to whoever is on call: the caller on hold, the contact rung with a
    whisper and "press 1"; the PA briefs them on the line, then hands over."""
    user_id, here = _user_id(user), f"/console/calls/{entry_id}"
    outcome = await database.run(
        lambda session: transferring.start_transfer(session, flows, entry_id, user_id, now)
    )
    if isinstance(outcome, TransferRefusal):
        return _to(here, outcome.value)
    ring = Ring(
        to=outcome.to, from_=outcome.from_,
        url=urls.transfer_whisper(entry_id, outcome.attempt),
        status_callback=urls.transfer_status(entry_id, outcome.attempt),
    )  # fmt: skip
    attempt = outcome.attempt
    try:
        await asyncio.to_thread(
            console.phone.hold, outcome.conference_sid, outcome.caller_sid, True
        )
    except PhoneError:
        await database.run(
            lambda session: transferring.transfer_failed(session, entry_id, attempt, "hold", now)
        )
        return _to(here, "transfer_phone")
    try:
        sid = await asyncio.to_thread(console.phone.ring, ring)
    except PhoneError:
        back = await database.run(
            lambda session: transferring.transfer_failed(session, entry_id, attempt, "ring", now)
        )
        if back is not None:
            await take_off_hold(console, back)
        return _to(here, "transfer_phone")
    await database.run(
        lambda session: transferring.note_contact_leg(session, entry_id, attempt, sid)
    )
    return _to(here)


@router.post("/calls/{entry_id}/hand-over")
async def hand_over(
    entry_id: int, user: StaffForm, database: DatabaseDep, flows: FlowsDep, console: ConsoleDep,
    now: Now,
) -> Response:  # fmt: skip
    """The PA has briefed the contact: the caller comes off hold with them and the PA leaves."""
    user_id, here = _user_id(user), f"/console/calls/{entry_id}"
    found = await database.run(
        lambda session: transferring.hand_over_of(session, entry_id, user_id)
    )
    if found is None:
        return _to(here, "gone")
    try:
        await asyncio.to_thread(
            console.phone.hand_over, found.conference_sid, found.caller_sid, found.contact_sid,
            found.pa_sid,
        )  # fmt: skip
    except PhoneError:
        return _to(here, "hand_over")
    await database.run(
        lambda session: transferring.handed_over(
            session, flows, entry_id, found.attempt, user.name, now
        )
    )
    return _to(here)


@router.post("/calls/{entry_id}/voicemail")
async def send_to_voicemail(
    entry_id: int, user: StaffForm, database: DatabaseDep, console: ConsoleDep, urls: UrlsDep
) -> Response:
    """Send the caller on to the flow's voicemail: the flow takes their message as it does when
    no PA answers; the PA's call ends, and wrap-up follows."""
    user_id, here = _user_id(user), f"/console/calls/{entry_id}"
    caller_sid = await database.run(
        lambda session: transferring.voicemail_of(session, entry_id, user_id)
    )
    if caller_sid is None:
        return _to(here, "not_with_you")
    try:
        await asyncio.to_thread(console.phone.redirect, caller_sid, urls.voicemail(entry_id))
    except PhoneError:
        return _to(here, "phone_voicemail")
    return _to(here, "voicemail")


# --- supervisors ------------------------------------------------------------------------------


@router.get("/supervisor", response_class=HTMLResponse)
async def supervisor(
    request: Request, user: SupervisorUser, database: DatabaseDep, now: Now
) -> HTMLResponse:
    """Every PA's presence and for how long, the queue, and today's figures per client."""
    user_id = _user_id(user)
    snapshot = await database.run(lambda session: service.console_snapshot(session, user_id, now))
    days = await _today(database, now)
    context = {
        **screens.me(snapshot, user, now), **screens.queue(snapshot, user, now),
        **screens.team(snapshot, now),
    }  # fmt: skip
    return render(request, "supervisor.html", days=days, **context)


@router.post("/calls/{entry_id}/monitor")
async def monitor(
    entry_id: int, user: SupervisorForm, database: DatabaseDep, console: ConsoleDep,
    mode: Annotated[str, Form()],
) -> Response:  # fmt: skip
    """Listen to a PA's call (muted), whisper to the PA (only they hear), or join it: the
    supervisor's phone is rung into the call's conference."""
    wanted = Monitor(mode) if mode in {m.value for m in Monitor} else None
    if wanted is None:
        raise HTTPException(422, "Choose listen, whisper or join.")
    user_id, here = _user_id(user), f"/console/calls/{entry_id}"
    outcome = await database.run(
        lambda session: transferring.monitor_call(session, entry_id, user_id, wanted)
    )
    if isinstance(outcome, str):
        return _to(here, "supervisor_phone" if outcome == "no_phone" else outcome)
    join = Join(
        to=outcome.to, from_=outcome.from_, muted=outcome.join.muted,
        coaching=outcome.join.coaching, call_sid_to_coach=outcome.join.call_sid_to_coach,
    )  # fmt: skip
    try:
        await asyncio.to_thread(console.phone.add_participant, outcome.conference_sid, join)
    except PhoneError:
        return _to(here, "monitor_phone")
    return _to(f"{here}?monitoring={wanted.value}")


async def _today(database: DatabaseDep, now: dt.datetime) -> list[ClientDay]:
    """Today's figures: every client's day began within the last 26 hours."""
    since = now - dt.timedelta(hours=26)
    waits = await database.run(lambda session: waits_since(session, since))
    return today_by_client(waits, now)


# --- live updates -----------------------------------------------------------------------------


@router.get("/events")
async def live_events(
    user: StaffUser, database: DatabaseDep, console: ConsoleDep, entry: int | None = None,
    team: bool = False,
) -> StreamingResponse:  # fmt: skip
    """Server-sent events: the page's live parts whenever they change."""
    supervising = team and screens.is_supervisor(user)

    async def load_days() -> list[ClientDay]:
        return await _today(database, console.clock())

    stream = screens.live_events(
        console, user, entry_id=entry, supervising=supervising,
        load_days=load_days if supervising else None,
    )  # fmt: skip
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
