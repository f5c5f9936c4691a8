"""A promised call back, decided without I/O: when it falls due, and what its deadline calls for.

A client promises callers a call back within so many minutes, per urgency (`callback_minutes`
in the escalation policy). The clock starts when the first contact can be told (a routine
message taken in a contact's quiet hours waits for the morning, and so does its promise). When
the deadline passes with no call back recorded and the message not closed, it is escalated
again from the policy's first step: once per deadline.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from app.flows.schema import Flow, Urgency
from app.oncall.escalation import Position, notifications_at, quiet_until


def callback_due(flow: Flow, urgency: Urgency, taken_at: dt.datetime) -> dt.datetime | None:
    """When the call back promised for a message taken at `taken_at` falls due; None when the
    client promises none for this urgency."""
    minutes = flow.policy_for(urgency).callback_minutes
    if minutes is None:
        return None
    return first_told_at(flow, urgency, taken_at) + dt.timedelta(minutes=minutes)


def first_told_at(flow: Flow, urgency: Urgency, taken_at: dt.datetime) -> dt.datetime:
    """The earliest a contact of the policy's first step can be told of the message."""
    times = []
    for owed in notifications_at(flow, urgency, Position(0, 0), taken_at):
        contact = flow.contact(owed.contact)
        times.append(
            (quiet_until(contact, flow, urgency, taken_at) if contact else None) or taken_at
        )
    return min(times, default=taken_at)


class AtDeadline(StrEnum):
    not_due = "not_due"  # keep waiting
    met = "met"  # called back or closed: nothing more, ever
    escalating = "escalating"  # still paging on the first run: note it missed, let that run on
    reescalate = "reescalate"  # nobody is being paged and nobody called back: page again


def at_deadline(
    due_at: dt.datetime,
    now: dt.datetime,
    *,
    called_back: bool,
    closed: bool,
    escalation_active: bool,
) -> AtDeadline:
    """What a message's call-back deadline calls for at `now`."""
    if called_back or closed:
        return AtDeadline.met
    if now < due_at:
        return AtDeadline.not_due
    return AtDeadline.escalating if escalation_active else AtDeadline.reescalate
