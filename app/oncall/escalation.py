"""Who to notify, by which channel, for a step of a client's escalation policy. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.flows.schema import Channel, Contact, EscalationStep, Flow, Urgency
from app.oncall.rota import who_is_on_call


@dataclass(frozen=True)
class Notification:
    """One notification owed: this contact, on this channel, at this address."""

    contact: str
    channel: Channel
    address: str
    step: int


def step_targets(flow: Flow, step: EscalationStep, at: dt.datetime) -> list[Contact]:
    """The contacts a policy step names at this instant."""
    if step.notify == "everyone":
        return list(flow.contacts)
    key = step.notify
    if key == "on_call":
        if flow.rotation is None:
            return flow.contacts[:1]
        key = who_is_on_call(flow.rotation, flow.zone, at)
    contact = flow.contact(key)
    return [contact] if contact else []


def address_for(contact: Contact, channel: Channel) -> str | None:
    return contact.email if channel is Channel.email else contact.phone


def notifications_for_step(
    flow: Flow, urgency: Urgency, index: int, at: dt.datetime
) -> list[Notification]:
    """Every (contact, channel) the policy's step `index` asks for, skipping missing addresses."""
    step = flow.policy_for(urgency).steps[index]
    owed: list[Notification] = []
    for contact in step_targets(flow, step, at):
        for channel in step.channels or contact.channels:
            address = address_for(contact, channel)
            if address:
                owed.append(Notification(contact.id, channel, address, index))
    return owed
