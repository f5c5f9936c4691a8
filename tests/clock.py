"""A clock the tests move by hand, so nothing ever sleeps to wait for time to pass."""

from __future__ import annotations

import datetime as dt

# A Thursday night, 02:00 UTC: after hours for every demo client.
THURSDAY_NIGHT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


class FakeClock:
    """A `Clock` (called for "now") that stands still until a test sets or advances it."""

    def __init__(self, now: dt.datetime = THURSDAY_NIGHT) -> None:
        self._now = THURSDAY_NIGHT
        self.set(now)

    def __call__(self) -> dt.datetime:
        return self._now

    def set(self, now: dt.datetime) -> dt.datetime:
        """Jump to `now`, an aware instant; naive times are refused, as the app stores UTC."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"FakeClock needs an aware datetime, got {now!r}")
        self._now = now.astimezone(dt.UTC)
        return self._now

    def advance(
        self, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> dt.datetime:
        """Move forward (escalation timeouts, queue waits) and return the new now."""
        step = dt.timedelta(seconds=seconds, minutes=minutes, hours=hours, days=days)
        if step < dt.timedelta(0):
            raise ValueError("FakeClock only moves forward; use set() to go back")
        self._now += step
        return self._now
