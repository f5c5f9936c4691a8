"""The console's pages: /console for PAs (presence, the live queue), the screen pop of a call,
the supervisors' view, and the live events that keep them current. Thin: read the form, run
a unit of work, render or redirect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from app.accounts.deps import StaffUser, SupervisorUser
from app.accounts.service import Principal
from app.console import screens, service
from app.console.answering import ConsoleUrls
from app.console.desk import Console
from app.console.pages import render
from app.console.phone import PhoneError, Ring
from app.console.presence import CHOOSABLE, State
from app.console.queries import waits_since
from app.console.queue import note_pa_leg, release
from app.console.script import Checked
from app.console.stats import ClientDay, today_by_client
from app.deps import DatabaseDep, FlowsDep, Now
from app.telephony.signature import public_base

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

PROBLEMS = {
    **{refusal.value: text for refusal, text in service.REFUSALS.items()},
    "busy": "Finish your call and its wrap-up first.",
    "phone": "Your phone could not be rung just now, so the caller is still waiting. Try again.",
    "gone": "That call is no longer yours.",
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


def _user_id(principal: Principal) -> int:
    assert principal.user_id is not None  # staff are people, never API keys
    return principal.user_id


def _to(path: str, problem: str | None = None) -> RedirectResponse:
    return RedirectResponse(f"{path}?problem={problem}" if problem else path, status_code=303)


# --- the PA's console ---------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def console_home(
    request: Request, user: StaffUser, database: DatabaseDep, now: Now, problem: str = ""
) -> HTMLResponse:
    """Presence and the live queue."""
    user_id = _user_id(user)
    snapshot = await database.run(lambda session: service.console_snapshot(session, user_id, now))
    context = {**screens.me(snapshot, user, now), **screens.queue(snapshot, user, now)}
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
    now: Now,
) -> Response:  # fmt: skip
    """Take a waiting caller: exactly one PA wins; their phone rings with a whisper."""
    user_id = _user_id(user)
    outcome = await database.run(lambda session: service.take_call(session, entry_id, user_id, now))
    if isinstance(outcome, service.Refusal):
        return _to("/console", outcome.value)
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


# --- a call: the screen pop ---------------------------------------------------------------------


@router.get("/calls/{entry_id}", response_class=HTMLResponse)
async def call_screen(
    request: Request, entry_id: int, user: StaffUser, database: DatabaseDep, flows: FlowsDep,
    now: Now, problem: str = "",
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
