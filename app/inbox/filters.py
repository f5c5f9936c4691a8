"""Which of a client's messages to show, and where the next page starts: plain values, no I/O.

Pages are keyset pages, newest first: a cursor is the (created_at, id) of the last message
shown, so a page never repeats or skips a message when new ones arrive meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one names nothing


class BadCursorError(ValueError):
    """A cursor this service did not hand out (or one mangled on the way back)."""


@dataclass(frozen=True)
class MessageFilter:
    """Messages taken in [since, until) (aware instants), with this status and urgency; or only
    those still waiting for a call back (not closed, nobody recorded calling the caller)."""

    status: str | None = None
    urgency: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    waiting_for_call_back: bool = False


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the next page holds the messages older than this one."""

    created_at: dt.datetime
    id: int

    def encode(self) -> str:
        """Opaque to callers: they hand it back, they don't build it."""
        text = f"{self.created_at.astimezone(dt.UTC).isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            when, _, number = text.partition("|")
            created_at, message_id = dt.datetime.fromisoformat(when), int(number)
            if created_at.tzinfo is None or not 1 <= message_id <= MAX_ID:
                raise ValueError(text)
            return cls(created_at.astimezone(dt.UTC), message_id)
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise BadCursorError("this cursor was not given out by this service") from None


def utc(at: dt.datetime) -> dt.datetime:
    """An instant in UTC, as stored; one without an offset is taken to be UTC already. Raises
    ValueError for an instant UTC cannot express (year 9999 at -23:59)."""
    try:
        return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} is out of range") from None


def local_days(
    first: dt.date | None, last: dt.date | None, zone: ZoneInfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The instants that bound the client's own calendar days `first` to `last`, both whole:
    [first's local midnight, the local midnight after `last`). ValueError: a day out of range."""

    def midnight(day: dt.date) -> dt.datetime:
        return utc(dt.datetime.combine(day, dt.time(0), tzinfo=zone))

    try:
        after_last = last + dt.timedelta(days=1) if last else None
    except OverflowError:
        raise ValueError(f"{last} is out of range") from None
    return (midnight(first) if first else None, midnight(after_last) if after_last else None)
