"""How many failed sign-ins are too many: per account and per address, in a sliding window."""

from __future__ import annotations

import datetime as dt

WINDOW = dt.timedelta(minutes=15)
PER_ACCOUNT = 5  # a person mistyping; a guesser gets five tries a quarter of an hour
PER_ADDRESS = 20  # an office behind one address has several people signing in


def sign_in_allowed(failures_for_account: int, failures_for_address: int) -> bool:
    """May another attempt be made, given the failures within WINDOW?"""
    return failures_for_account < PER_ACCOUNT and failures_for_address < PER_ADDRESS


def window_start(now: dt.datetime) -> dt.datetime:
    return now - WINDOW
