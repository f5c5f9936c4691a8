"""What the console shows of the queue and the team, from plain rows. Pure.

The queue is in the order PAs should take it: the most urgent first, then the longest waiting.
Callers' numbers are masked until a PA has answered them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.console.presence import Standing, State, presence_now

URGENCY_RANK = {"emergency": 0, "urgent": 1, "routine": 2}
SAID_URGENT = {"urgent", "emergency"}


@dataclass(frozen=True)
class EntryRow:
    """A queue entry as the console reads it."""

    id: int
    client: str
    client_slug: str
    caller: str
    answers: Mapping[str, Any]
    urgency: str
    status: str
    enqueued_at: dt.datetime
    pa_id: int | None
    pa_name: str | None
    transfer: str | None = None  # a warm transfer's state (`transfer.TransferState`)

    @property
    def live_status(self) -> str:
        """What a call's page watches: its status, and its transfer's when there is one."""
        return live_status(self.status, self.transfer)


def live_status(status: str, transfer: str | None) -> str:
    return f"{status}/{transfer}" if transfer else status


@dataclass(frozen=True)
class PresenceRow:
    """A PA's presence as stored, with who they are."""

    user_id: int
    name: str
    role: str
    state: State
    since: dt.datetime
    last_seen: dt.datetime
    entry_id: int | None


@dataclass(frozen=True)
class QueueLine:
    """One line of the live queue."""

    entry_id: int
    position: int
    client: str
    caller: str  # masked
    waited_seconds: int
    said: str  # what the caller already said in the flow ("caller is: urgent")
    urgent: bool
    status: str  # waiting, or offered (a PA's phone is ringing for them)
    pa_name: str | None


@dataclass(frozen=True)
class TeamLine:
    """One PA, as a supervisor sees them."""

    user_id: int
    name: str
    standing: Standing
    for_seconds: int
    entry_id: int | None


def mask_caller(number: str) -> str:
    """+61491570999 -> +61 ••• 999: enough to tell callers apart, not to dial them."""
    digits = number.strip()
    if len(digits) <= 6:
        return "•" * len(digits)
    return f"{digits[:3]} ••• {digits[-3:]}"


def said(answers: Mapping[str, Any]) -> str:
    """The caller's answers so far, for a line of the queue."""
    return "; ".join(f"{label(name)}: {value}" for name, value in answers.items())


def label(name: str) -> str:
    """A flow's answer name as people read it: caller_is -> Caller is."""
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def is_urgent(entry: EntryRow) -> bool:
    return entry.urgency in SAID_URGENT or any(
        str(value).lower() in SAID_URGENT for value in entry.answers.values()
    )


def queue_lines(entries: Iterable[EntryRow], now: dt.datetime) -> list[QueueLine]:
    """The callers still waiting for a PA (or being put through to one), in taking order."""
    waiting = [e for e in entries if e.status in ("waiting", "offered")]
    waiting.sort(key=lambda e: (0 if is_urgent(e) else 1, URGENCY_RANK.get(e.urgency, 3),
                                e.enqueued_at, e.id))  # fmt: skip
    return [_line(e, position, now) for position, e in enumerate(waiting, start=1)]


def _line(e: EntryRow, position: int, now: dt.datetime) -> QueueLine:
    return QueueLine(
        entry_id=e.id, position=position, client=e.client, caller=mask_caller(e.caller),
        waited_seconds=max(0, int((now - e.enqueued_at).total_seconds())),
        said=said(e.answers), urgent=is_urgent(e), status=e.status, pa_name=e.pa_name,
    )  # fmt: skip


def standing_of(row: PresenceRow | None, now: dt.datetime) -> Standing:
    """A PA's presence now; someone who never opened the console is offline."""
    if row is None:
        return Standing(State.offline, now)
    return presence_now(row.state, row.since, row.last_seen, now)


def team_lines(team: Iterable[PresenceRow], now: dt.datetime) -> list[TeamLine]:
    """Every PA's presence and for how long, those who can take calls first."""
    order = {State.available: 0, State.on_call: 1, State.wrap_up: 2, State.on_break: 3,
             State.offline: 4}  # fmt: skip
    lines = []
    for row in team:
        standing = standing_of(row, now)
        seconds = max(0, int((now - standing.since).total_seconds()))
        entry = row.entry_id if standing.state in (State.on_call, State.wrap_up) else None
        lines.append(TeamLine(row.user_id, row.name, standing, seconds, entry))
    lines.sort(key=lambda line: (order[line.standing.state], line.name.lower()))
    return lines


def duration(seconds: int) -> str:
    """0:42, 12:05, 1:02:03."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
