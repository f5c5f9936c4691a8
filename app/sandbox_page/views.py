"""What the sandbox sent, as rows for its page: texts, calls and emails in one list, newest first.

Pure: it reads the fake Twilio's records and the SMTP inbox's emails as plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

from app.telephony.sandbox.fake_resources import CallRecord, MessageRecord

Kind = Literal["SMS", "Call", "Email"]


@dataclass(frozen=True)
class SentRow:
    """One thing sent: `summary` is an SMS's words or an email's subject; `link` opens an email."""

    at: datetime
    kind: Kind
    to: str
    sender: str
    summary: str
    status: str
    link: str | None = None


@dataclass(frozen=True)
class EmailView:
    """One email as its page shows it; `html` is shown only inside a sandboxed frame."""

    number: int
    at: datetime
    sender: str
    to: str
    subject: str
    text: str | None
    html: str | None


Arrival = tuple[datetime, EmailMessage]  # an email, and when the sandbox's inbox got it


def sent_rows(
    texts: Sequence[MessageRecord], calls: Sequence[CallRecord], emails: Sequence[Arrival]
) -> list[SentRow]:
    """Everything sent, newest first (by when the sandbox got it); calls the app placed only,
    not callers ringing in."""
    rows = [
        SentRow(sms.date_created, "SMS", sms.to, sms.from_ or "", sms.body, sms.status)
        for sms in texts
    ]
    rows += [
        SentRow(call.date_created, "Call", call.to, call.from_, "", call.status)
        for call in calls
        if call.direction != "inbound"
    ]
    for number, arrival in enumerate(emails, start=1):
        view = _view(arrival, number)
        link = f"/sandbox/emails/{number}"
        rows.append(SentRow(view.at, "Email", view.to, view.sender, view.subject, "received", link))
    return sorted(rows, key=lambda row: row.at, reverse=True)


def email_view(emails: Sequence[Arrival], number: int) -> EmailView | None:
    """The `number`th email received (from 1), or None when there is no such email."""
    if not 1 <= number <= len(emails):
        return None
    return _view(emails[number - 1], number)


def _view(arrival: Arrival, number: int) -> EmailView:
    at, email = arrival
    return EmailView(
        number=number,
        at=at,
        sender=str(email["From"] or ""),
        to=str(email["To"] or ""),
        subject=str(email["Subject"] or "").strip() or "(no subject)",
        text=_part(email, "plain"),
        html=_part(email, "html"),
    )


def _part(email: EmailMessage, subtype: str) -> str | None:
    body = email.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    assert isinstance(body, EmailMessage)
    content = body.get_content()
    return content if isinstance(content, str) else None
