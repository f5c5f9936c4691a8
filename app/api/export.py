"""Messages as CSV rows, safe to open in a spreadsheet.

A cell that starts with = + - @ (or a tab or carriage return) is a formula to Excel, LibreOffice
and Google Sheets, and a caller chooses what they say: such cells get a leading apostrophe, which
the spreadsheet shows as text. https://owasp.org/www-community/attacks/CSV_Injection
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable

from app.messages.schemas import MessageOut

HEADER = (
    "id", "created_at", "client", "caller", "urgency", "status", "outcome", "answers",
    "transcription", "acknowledged_at", "acknowledged_by", "called_back_at", "called_back_by",
    "closed_at", "closed_by", "close_note",
)  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A value as a cell no spreadsheet runs as a formula."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(messages: Iterable[MessageOut], *, header: bool = False) -> str:
    """CSV text for these messages (RFC 4180: CRLF line ends), after the header when asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(HEADER)
    for m in messages:
        answers = "; ".join(f"{name}: {value}" for name, value in m.answers.items())
        writer.writerow(
            safe_cell(value)
            for value in (
                m.id, m.created_at, m.client, m.caller, m.urgency, m.status, m.outcome, answers,
                m.transcription, m.acknowledged_at, m.acknowledged_by, m.called_back_at,
                m.called_back_by, m.closed_at, m.closed_by, m.close_note,
            )
        )  # fmt: skip
    return out.getvalue()
