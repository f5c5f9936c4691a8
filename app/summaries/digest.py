"""What a summary says: its messages, urgent first, as plain text and as HTML for a phone. Pure.

The HTML carries its styles inline and loads nothing from anywhere (mail apps block remote
assets, and a phone may be offline when the email is opened); the plain-text part says the same.
Times are the client's wall-clock times, with the zone's abbreviation so the hour the clocks go
back reads 01:30 BST, then 01:30 GMT.

In privacy mode (`Digest.private`) a summary lists each message's reference, time, urgency, who
was notified and who took it, but nothing of the caller: not their name or number, nor what they
said; those are in the portal, behind each message's link.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from app.summaries.schedule import Period

URGENCY_ORDER = {"emergency": 0, "urgent": 1}  # then routine, and anything unknown
WORDS = {"sms": "text", "voice": "call", "email": "email"}


@dataclass(frozen=True)
class Entry:
    """One message as the summary shows it."""

    id: int
    ref: str  # the short reference contacts text back, e.g. "4F"
    at: dt.datetime  # when it was taken (aware UTC)
    caller: str
    caller_name: str | None
    callback: str  # the number to call back: the one the caller gave, or the one they rang from
    urgency: str
    outcome: str  # message | partial | voicemail | connected
    status: str  # new | notified | acknowledged | unacknowledged | closed
    answers: Mapping[str, Any]
    transcription: str | None
    notified: Sequence[tuple[str, Sequence[str]]]  # (contact name, channels), in order
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    link: str  # the message in the portal
    called_back_by: str | None = None
    called_back_at: dt.datetime | None = None


@dataclass(frozen=True)
class Digest:
    client: str
    zone: ZoneInfo
    period: Period
    entries: Sequence[Entry]
    private: bool = False  # the client's privacy mode: no caller, nothing they said

    @property
    def urgent(self) -> list[Entry]:
        return [e for e in ordered(self.entries) if e.urgency in URGENCY_ORDER]

    @property
    def routine(self) -> list[Entry]:
        return [e for e in ordered(self.entries) if e.urgency not in URGENCY_ORDER]


Action = Literal["send", "skip", "nothing_new"]


def what_to_do(messages: int, *, skip_empty: bool, on_demand: bool, after_another: bool) -> Action:
    """Send it; record it as skipped (an empty night, and the client chose `skip_empty`); or,
    asked for on demand with nothing new since the last summary, do nothing at all, so asking
    twice in a row sends one summary."""
    if messages:
        return "send"
    if on_demand and after_another:
        return "nothing_new"
    return "skip" if skip_empty else "send"


def ordered(entries: Sequence[Entry]) -> list[Entry]:
    """Emergencies, then urgent messages, then routine ones; each in the order they came in."""
    return sorted(entries, key=lambda e: (URGENCY_ORDER.get(e.urgency, 9), e.at, e.id))


def local(at: dt.datetime, zone: ZoneInfo) -> str:
    """'02:14 GMT Thu 26 Nov', on the client's clock."""
    moment = at.astimezone(zone)
    return f"{moment:%H:%M %Z %a} {moment.day} {moment:%b}"


def subject(digest: Digest) -> str:
    count = len(digest.entries)
    if not count:
        return f"{digest.client}: no messages since {local(digest.period.start, digest.zone)}"
    urgent = len(digest.urgent)
    plural = "message" if count == 1 else "messages"
    return f"{digest.client}: {count} {plural}" + (f", {urgent} urgent" if urgent else "")


def _span(digest: Digest) -> str:
    start, end = (local(t, digest.zone) for t in (digest.period.start, digest.period.end))
    return f"from {start} to {end}"


def _who(entry: Entry) -> str:
    return f"{entry.caller_name}, {entry.callback}" if entry.caller_name else entry.callback


IN_THE_PORTAL = "What they said is in the portal."


def _said(entry: Entry, private: bool) -> list[str]:
    if private:
        return [IN_THE_PORTAL]
    lines = [
        f"{name.replace('_', ' ').capitalize()}: {value}"
        for name, value in entry.answers.items()
        if value not in (None, "") and name not in ("callback",)
    ]
    if entry.transcription:
        lines.append(f"Voicemail: {entry.transcription}")
    return lines or ["They left no details."]


def _notified(entry: Entry) -> str | None:
    if not entry.notified:
        return None
    people = [
        f"{name} ({', '.join(WORDS.get(c, c) for c in channels)})"
        for name, channels in entry.notified
    ]
    return "Notified: " + "; ".join(people)


def _standing(entry: Entry, zone: ZoneInfo) -> str:
    """Who has it, or that nobody does yet; then whether the caller has been called back."""
    if entry.acknowledged_by and entry.acknowledged_at:
        taken = f"Taken by {entry.acknowledged_by} at {local(entry.acknowledged_at, zone)}"
    elif entry.status == "unacknowledged":
        taken = "Nobody took it: every contact was tried"
    elif entry.status == "closed":
        taken = "Closed"
    else:
        taken = "Not taken by anyone yet"
    if entry.outcome == "connected":  # a person answered the caller: nobody owes a call back
        back = ""
    elif entry.called_back_at:
        by = f" by {entry.called_back_by}" if entry.called_back_by else ""
        back = f"called back{by} at {local(entry.called_back_at, zone)}"
    else:
        back = "not called back yet"
    closed = ", closed" if entry.status == "closed" and taken != "Closed" else ""
    return "; ".join(part for part in (taken + closed, back) if part)


def _label(entry: Entry) -> str:
    return "" if entry.urgency == "routine" else f"{entry.urgency.upper()} "


def plain_text(digest: Digest) -> str:
    if not digest.entries:
        return f"No messages for {digest.client} {_span(digest)}.\n"
    lines = [f"{digest.client}: {len(digest.entries)} messages {_span(digest)}.", ""]
    if len(digest.entries) == 1:
        lines[0] = f"{digest.client}: 1 message {_span(digest)}."
    for heading, entries in (("URGENT", digest.urgent), ("ROUTINE", digest.routine)):
        if not entries:
            continue
        lines += [f"{heading} ({len(entries)})", ""]
        for entry in entries:
            who = "" if digest.private else f"  {_who(entry)}"
            lines.append(f"{_label(entry)}#{entry.ref}  {local(entry.at, digest.zone)}{who}")
            lines += [f"  {line}" for line in _said(entry, digest.private)]
            if notified := _notified(entry):
                lines.append(f"  {notified}")
            lines.append(f"  {_standing(entry, digest.zone)}")
            lines += [f"  {entry.link}", ""]
    return "\n".join(lines)


# --- HTML: one column, inline styles, large enough to read and tap on a phone -----------------

_PAGE = (
    "margin:0 auto;max-width:600px;padding:16px;background:#ffffff;color:#1a1a1a;"
    "font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "font-size:16px;line-height:1.45"
)
_CARD = "margin:0 0 14px;padding:10px 12px;border-left:4px solid {colour};background:{tint}"
_COLOURS = {"urgent": ("#b3261e", "#fdf1f0"), "routine": ("#5f6368", "#f6f7f8")}
_SMALL = "margin:2px 0;color:#555555;font-size:14px"
_LINE = "margin:6px 0"
_LINK = "color:#0b57d0;font-weight:bold"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _card(entry: Entry, zone: ZoneInfo, colours: tuple[str, str], private: bool) -> str:
    number = _e(entry.callback)
    tel = f"<a href='tel:{number}' style='{_LINK}'>{number}</a>" if entry.callback else ""
    name = f"{_e(entry.caller_name)}, " if entry.caller_name else ""
    if private:
        tel, name = f"Message #{_e(entry.ref)}", ""
    said = "".join(f"<p style='{_LINE}'>{_e(line)}</p>" for line in _said(entry, private))
    notified = _notified(entry)
    return (
        f"<div style='{_CARD.format(colour=colours[0], tint=colours[1])}'>"
        f"<p style='margin:0;font-weight:bold'>{_e(_label(entry))}{name}{tel}</p>"
        f"<p style='{_SMALL}'>{_e(local(entry.at, zone))} &middot; #{_e(entry.ref)}</p>"
        f"{said}"
        + (f"<p style='{_SMALL}'>{_e(notified)}</p>" if notified else "")
        + f"<p style='{_LINE}'>{_e(_standing(entry, zone))}</p>"
        f"<p style='{_LINE}'><a href='{_e(entry.link)}' style='{_LINK}'>Open #{_e(entry.ref)}"
        " in the portal</a></p></div>"
    )


def html_body(digest: Digest) -> str:
    head = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(subject(digest))}</title></head>"
        f"<body style='margin:0;padding:0;background:#eeeeee'><div style=\"{_PAGE}\">"
        f"<h1 style='margin:0 0 4px;font-size:20px'>{_e(digest.client)}</h1>"
    )
    if not digest.entries:
        return head + f"<p style='{_LINE}'>No messages {_e(_span(digest))}.</p></div></body></html>"
    count = len(digest.entries)
    parts = [
        head,
        f"<p style='{_SMALL}'>{count} message{'s' if count != 1 else ''} {_e(_span(digest))}</p>",
    ]
    for heading, entries, colours in (
        ("Urgent", digest.urgent, _COLOURS["urgent"]),
        ("Routine", digest.routine, _COLOURS["routine"]),
    ):
        if not entries:
            continue
        parts.append(
            f"<h2 style='margin:20px 0 8px;font-size:18px;color:{colours[0]}'>"
            f"{heading} ({len(entries)})</h2>"
        )
        parts += [_card(entry, digest.zone, colours, digest.private) for entry in entries]
    parts.append("</div></body></html>")
    return "".join(parts)


def render(digest: Digest) -> tuple[str, str, str]:
    """(subject, plain text, HTML)."""
    return subject(digest), plain_text(digest), html_body(digest)
