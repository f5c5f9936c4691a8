"""How often one contact may be notified on one channel, and how long to wait to retry. Pure.

Carriers filter bursts: at most one notification per contact per channel per window. What
arrives meanwhile waits for the window to pass and then goes as one bundle.
"""

from __future__ import annotations

import datetime as dt
import random

WINDOW = dt.timedelta(seconds=60)
MAX_ATTEMPTS = 8


def hold_until(
    last_sent_at: dt.datetime | None, now: dt.datetime, window: dt.timedelta = WINDOW
) -> dt.datetime | None:
    """When this contact may next be notified on this channel, or None if now is fine."""
    if last_sent_at is None or now - last_sent_at >= window:
        return None
    return last_sent_at + window


def retry_delay(attempt: int, rng: random.Random | None = None) -> dt.timedelta:
    """Exponential backoff with full jitter: up to 2, 4, 8 … seconds, capped at five minutes."""
    ceiling = min(300.0, 2.0 ** max(attempt, 1))
    return dt.timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))
