"""What each console page shows, built from the live snapshot, and the server-sent events that
keep it current: the same fragments the page was rendered with, sent again when they change.
https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from app.accounts.models import Role
from app.accounts.service import Principal
from app.console.board import queue_lines, standing_of, team_lines
from app.console.desk import Console
from app.console.pages import fragment
from app.console.presence import CHOOSABLE, HEARTBEAT, LABELS, Standing, State, may_take_calls
from app.console.queries import Snapshot
from app.console.stats import ClientDay

RECONNECT_MS = 2000  # how soon a browser reconnects when the stream drops
STREAM_SECONDS = 15 * 60  # then the browser reconnects: its session is checked again


def is_supervisor(principal: Principal) -> bool:
    return principal.role in (Role.supervisor, Role.admin)


def me(snapshot: Snapshot, principal: Principal, now: dt.datetime) -> dict[str, Any]:
    """The PA's own presence bar."""
    row = snapshot.presence_of(principal.user_id)
    return me_context(standing_of(row, now), row.entry_id if row else None, principal, now)


def me_context(
    standing: Standing, entry_id: int | None, principal: Principal, now: dt.datetime
) -> dict[str, Any]:
    busy = standing.state in (State.on_call, State.wrap_up)
    return {
        "standing": standing,
        "since_seconds": max(0, int((now - standing.since).total_seconds())),
        "choices": [(s, LABELS[s]) for s in CHOOSABLE if s is not standing.state and not busy],
        "my_entry": entry_id if busy else None,
        "csrf_token": principal.csrf_token,
    }


def queue(
    snapshot: Snapshot, principal: Principal, now: dt.datetime, browser: bool = False
) -> dict[str, Any]:
    """The live queue, with Take buttons for a PA who may take calls (and answer them in the
    browser, when the console can)."""
    standing = standing_of(snapshot.presence_of(principal.user_id), now)
    return {
        "lines": queue_lines(snapshot.entries, now),
        "can_take": may_take_calls(standing),
        "csrf_token": principal.csrf_token,
        "browser": browser,
    }


def team(snapshot: Snapshot, now: dt.datetime) -> dict[str, Any]:
    return {"team": team_lines(snapshot.team, now)}


def fragments(
    snapshot: Snapshot, principal: Principal, now: dt.datetime, *, entry_id: int | None,
    supervising: bool, days: list[ClientDay] | None, browser: bool = False,
) -> dict[str, str]:  # fmt: skip
    """Every live part of the page, by the id of the element it fills."""
    mine = me(snapshot, principal, now)
    if entry_id is not None and mine["my_entry"] == entry_id:
        mine["my_entry"] = None  # this page is that call
    parts = {
        "me": fragment("_presence.html", **mine),
        "queue": fragment("_queue.html", **queue(snapshot, principal, now, browser)),
    }
    if supervising:
        parts["team"] = fragment("_team.html", **team(snapshot, now))
    if days is not None:
        parts["stats"] = fragment("_stats.html", days=days)
    if entry_id is not None:
        parts["entry"] = snapshot.entry_status(entry_id)
    return parts


def event(name: str, data: str) -> str:
    """One server-sent event; every line of the data is a `data:` line."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"


async def live_events(
    console: Console,
    principal: Principal,
    *,
    entry_id: int | None,
    supervising: bool,
    load_days: Callable[[], Awaitable[list[ClientDay]]] | None,
) -> AsyncIterator[str]:
    """A console's stream: the whole page's live parts at once (a reconnect starts afresh),
    then each part again whenever it changes. Every HEARTBEAT a comment line goes out, the PA's
    console is noted as still open, and the parts are drawn again (presences time out)."""
    assert principal.user_id is not None
    yield f"retry: {RECONNECT_MS}\n\n"
    await console.seen(principal.user_id)
    version, snapshot = await console.live.current()
    shown: dict[str, str] = {}
    started = beat = time.monotonic()
    while time.monotonic() - started < STREAM_SECONDS:
        days = await load_days() if load_days is not None else None
        parts = fragments(
            snapshot, principal, console.clock(), entry_id=entry_id, supervising=supervising,
            days=days, browser=console.browser is not None,
        )  # fmt: skip
        for name, data in parts.items():
            if shown.get(name) != data:
                shown[name] = data
                yield event(name, data)
        patience = max(0.0, HEARTBEAT.total_seconds() - (time.monotonic() - beat))
        fresh = await console.live.next(version, patience)
        if fresh is not None:
            version, snapshot = fresh
        if time.monotonic() - beat >= HEARTBEAT.total_seconds():
            await console.seen(principal.user_id)
            beat = time.monotonic()
            yield ": still here\n\n"
