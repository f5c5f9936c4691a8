"""How often one contact may be notified on one channel, and how long to wait to retry. Pure.

Carriers filter bursts, and nobody wants four calls in a second: at most one notification per
contact per channel per window. Texts that arrive meanwhile wait for the window to pass and
then go as one bundle; calls go one a window.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

WINDOW = dt.timedelta(seconds=60)
MAX_ATTEMPTS = 8


def hold_until(
    last_sent_at: dt.datetime | None, now: dt.datetime, window: dt.timedelta = WINDOW
) -> dt.datetime | None:
    """When this contact may next be notified on this channel, or None if now is fine."""
    if last_sent_at is None or now - last_sent_at >= window:
        return None
    return last_sent_at + window


def pace(
    sends: Sequence[K], last_sent: Mapping[K, dt.datetime], now: dt.datetime,
    window: dt.timedelta = WINDOW,
) -> list[dt.datetime | None]:  # fmt: skip
    """For each send in a batch, in order, keyed by (contact, channel): None to send it now, or
    when it may go. One sent now counts as the contact's latest, so a second one to the same
    contact in the same batch waits for the window as if the first had been sent before."""
    latest = dict(last_sent)
    plan: list[dt.datetime | None] = []
    for key in sends:
        held = hold_until(latest.get(key), now, window)
        plan.append(held)
        if held is None:
            latest[key] = now
    return plan


def retry_delay(attempt: int, rng: random.Random | None = None) -> dt.timedelta:
    """Exponential backoff with full jitter: up to 2, 4, 8 … seconds, capped at five minutes."""
    ceiling = min(300.0, 2.0 ** max(attempt, 1))
    return dt.timedelta(seconds=(rng or random).uniform(ceiling / 2, ceiling))
