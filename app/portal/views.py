"""What the portal's pages show: the list's filter form read leniently, and timeline lines in
the client's own words and time. Plain values, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from app.flows.schema import Urgency
from app.inbox.filters import BadCursorError, Cursor, MessageFilter, local_days
from app.messages.models import MessageStatus
from app.messages.schemas import TimelineEntry

STATUSES = [s.value for s in MessageStatus]
URGENCIES = [u.value for u in Urgency]
DONE = {
    "acknowledge": "You have acknowledged this message: nobody else will be paged about it.",
    "call_back": "Your call back is recorded.",
    "close": "The message is closed.",
}


@dataclass(frozen=True)
class ListForm:
    """The message list's filters as the browser sent them (empty: any)."""

    first: str = ""  # from this local date
    last: str = ""  # to this local date, inclusive
    urgency: str = ""
    status: str = ""
    waiting: bool = False
    cursor: str = ""

    def read(self, zone: ZoneInfo) -> tuple[MessageFilter, Cursor | None, list[str]]:
        """The filter these fields ask for, where the page starts, and what was ignored."""
        problems: list[str] = []
        first = _date(self.first, "From", problems)
        last = _date(self.last, "To", problems)
        try:
            since, until = local_days(first, last, zone)
        except ValueError:
            problems.append("Those dates are out of range, so they were ignored.")
            since = until = None
        after = None
        if self.cursor:
            try:
                after = Cursor.decode(self.cursor)
            except BadCursorError:
                problems.append("That page link is broken: showing the newest messages.")
        return (
            MessageFilter(
                status=_one_of(self.status, STATUSES, "Status", problems),
                urgency=_one_of(self.urgency, URGENCIES, "Urgency", problems),
                since=since,
                until=until,
                waiting_for_call_back=self.waiting,
            ),
            after,
            problems,
        )

    def query(self, cursor: Cursor | None = None) -> str:
        """These filters as a query string, from `cursor` on (the "Older messages" link)."""
        fields = {
            "from": self.first, "to": self.last, "urgency": self.urgency, "status": self.status,
            "waiting": "1" if self.waiting else "", "cursor": cursor.encode() if cursor else "",
        }  # fmt: skip
        return urlencode({name: value for name, value in fields.items() if value})

    def without_cursor(self) -> ListForm:
        return replace(self, cursor="")


def _date(text: str, label: str, problems: list[str]) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label}: {text!r} is not a date, so it was ignored.")
        return None


def _one_of(text: str, allowed: list[str], label: str, problems: list[str]) -> str | None:
    if not text:
        return None
    if text not in allowed:
        problems.append(f"{label}: {text!r} is not one of {', '.join(allowed)}, so it was ignored.")
        return None
    return text


@dataclass(frozen=True)
class TimelineLine:
    at: str
    what: str
    who: str
    note: str
    details: list[str] = field(default_factory=list)


HIDDEN = {"by", "via", "note", "url", "sid", "cancelled", "content"}  # content: a hash
READ_WHERE = {
    "portal": "the portal",
    "portal-audio": "the portal (the recording)",
    "api": "the API",
    "api-audio": "the API (the recording)",
    "export": "a CSV export",
    "console": "the PA console",
    "cli": "Nightdesk's command line",
    "call": "the notification call, after the PIN",
}


def read_where(via: str) -> str:
    """Where a read in the read log came from, in words."""
    return READ_WHERE.get(via, via)


def timeline_line(entry: TimelineEntry, zone: ZoneInfo) -> TimelineLine:
    """One thing that happened, for people: who did it and how, their note, and the rest of
    its detail, never a link to Twilio (recordings play through Nightdesk)."""
    detail = entry.detail
    by, via = detail.get("by"), detail.get("via")
    who = f"{by} ({via})" if by and via else str(by or "")
    details = [
        f"{name.replace('_', ' ')}: {_shown(value)}"
        for name, value in detail.items()
        if name not in HIDDEN and value not in (None, "", [], {}) and not _is_link(value)
    ]
    return TimelineLine(
        at=local(entry.at, zone, seconds=True),
        what=entry.kind.replace("_", " "),
        who=who,
        note=str(detail.get("note") or ""),
        details=details,
    )


def _is_link(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def local(at: dt.datetime | None, zone: ZoneInfo, *, seconds: bool = False) -> str:
    """An instant on the client's own clock, as its people read it."""
    if at is None:
        return ""
    return at.astimezone(zone).strftime("%a %d %b %Y, %H:%M" + (":%S" if seconds else ""))
