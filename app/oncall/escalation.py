"""Escalation, decided without I/O: whom each step notifies, on which channel, and what comes next.

A policy is a list of steps, run `1 + repeat` times (rounds). Each step notifies its contacts and
waits; when nobody has acknowledged by then, the next step fires. A step that names channels sends
on all of them at once; otherwise each contact gets their preferred channel first, and the next one
as soon as a delivery fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.flows.hours import daily_window_end
from app.flows.rota import who_is_on_call
from app.flows.schema import Channel, Contact, EscalationPolicy, EscalationStep, Flow, Urgency


@dataclass(frozen=True)
class Notification:
    """One notification owed: this contact, on this channel, at this address."""

    contact: str
    channel: Channel
    address: str
    round: int
    step: int
    failover: bool  # on failure, try the contact's next channel


@dataclass(frozen=True)
class Position:
    """Where a message is in its policy: round 0 is the first run through the steps."""

    round: int
    step: int


def step_targets(flow: Flow, step: EscalationStep, at: dt.datetime) -> list[Contact]:
    """The contacts a policy step names at this instant (on call, a group, everyone, one)."""
    if step.notify == "everyone":
        return list(flow.contacts)
    keys = flow.groups.get(step.notify, [step.notify])
    if step.notify == "on_call":
        keys = [who_is_on_call(flow.rotation, flow.zone, at)] if flow.rotation else []
        if not keys and flow.contacts:
            keys = [flow.contacts[0].id]
    return [c for key in keys if (c := flow.contact(key)) is not None]


def address_for(contact: Contact, channel: Channel) -> str | None:
    return contact.email if channel is Channel.email else contact.phone


def notifications_at(
    flow: Flow, urgency: Urgency, position: Position, at: dt.datetime
) -> list[Notification]:
    """Every notification the policy's step at `position` asks for."""
    step = flow.policy_for(urgency).steps[position.step]
    owed: list[Notification] = []
    for contact in step_targets(flow, step, at):
        if step.channels is not None:
            for channel in step.channels:
                if address := address_for(contact, channel):
                    owed.append(
                        Notification(contact.id, channel, address, *_at(position), failover=False)
                    )
            continue
        first = next_channel(contact, after=None)
        if first is not None:
            channel, address = first
            owed.append(Notification(contact.id, channel, address, *_at(position), failover=True))
    return owed


def _at(position: Position) -> tuple[int, int]:
    return position.round, position.step


def next_channel(contact: Contact, after: Channel | None) -> tuple[Channel, str] | None:
    """The contact's next channel in order of preference that has an address."""
    channels = contact.channels
    start = channels.index(after) + 1 if after in channels else 0
    for channel in channels[start:]:
        if address := address_for(contact, channel):
            return channel, address
    return None


def next_position(policy: EscalationPolicy, position: Position) -> Position | None:
    """The step after this one, starting the next round after the last step; None when done."""
    if position.step + 1 < len(policy.steps):
        return Position(position.round, position.step + 1)
    if position.round < policy.repeat:
        return Position(position.round + 1, 0)
    return None


def wait_after(policy: EscalationPolicy, position: Position) -> dt.timedelta:
    """How long a step waits for an acknowledgement before the next one fires."""
    return dt.timedelta(minutes=policy.steps[position.step].wait_minutes)


def quiet_until(
    contact: Contact, flow: Flow, urgency: Urgency, at: dt.datetime
) -> dt.datetime | None:
    """When a routine notification may go out, if `at` is in the contact's quiet hours."""
    if urgency is not Urgency.routine or not contact.quiet_hours:
        return None
    return daily_window_end(contact.quiet_hours, flow.zone, at)
