"""A PA's presence, decided from what they set and when their console was last seen. Pure.

A PA sets available, on a break or offline; taking a call puts them on a call, the call's end
into wrap-up. Their console's live connection says it is still open every `HEARTBEAT`; once it
has been silent for `GONE_AFTER` (the page was closed, the laptop slept) they count as offline,
so nobody is offered calls at an empty desk. On a call they stay on a call: the phone, not the
page, says when that ends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

HEARTBEAT = dt.timedelta(seconds=15)
GONE_AFTER = dt.timedelta(seconds=60)


class State(StrEnum):
    available = "available"
    on_call = "on_call"
    wrap_up = "wrap_up"
    on_break = "on_break"
    offline = "offline"


LABELS = {
    State.available: "Available",
    State.on_call: "On a call",
    State.wrap_up: "Wrap-up",
    State.on_break: "On a break",
    State.offline: "Offline",
}

# What a PA may choose from the console; the others follow from calls.
CHOOSABLE = (State.available, State.on_break, State.offline)


@dataclass(frozen=True)
class Standing:
    """A PA's presence now, and since when."""

    state: State
    since: dt.datetime

    @property
    def label(self) -> str:
        return LABELS[self.state]


def presence_now(
    state: State, since: dt.datetime, last_seen: dt.datetime, now: dt.datetime
) -> Standing:
    """What a PA's presence is at `now`: as set, unless their console has been gone too long."""
    gone_since = last_seen + GONE_AFTER
    if state in (State.offline, State.on_call) or now < gone_since:
        return Standing(state, since)
    return Standing(State.offline, max(since, gone_since))


def may_take_calls(standing: Standing) -> bool:
    """Only available PAs are offered calls."""
    return standing.state is State.available


def may_choose(current: State, wanted: State) -> bool:
    """Whether a PA can switch to `wanted` from the console: not in the middle of a call, nor
    of its wrap-up (which ends by finishing it, and makes them available)."""
    return wanted in CHOOSABLE and current not in (State.on_call, State.wrap_up)
