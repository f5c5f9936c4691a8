"""A promised call back decided as pure functions: when it falls due, and what its deadline
calls for, under an injected instant."""

from __future__ import annotations

import datetime as dt
import textwrap

import yaml

from app.flows.schema import Flow, Urgency
from app.oncall.callbacks import AtDeadline, at_deadline, callback_due

CLIENT = """
client: promise
name: Promise Plumbing
numbers: ["+441134960900"]
timezone: Europe/London
contacts:
  - {id: sam, name: Sam, phone: "+447911123456", channels: [sms]}
  - {id: quinn, name: Quinn, phone: "+447911000111", channels: [sms], quiet_hours: ["22:00-07:00"]}
escalation:
  steps: [{notify: sam, wait_minutes: 10}]
  callback_minutes: 60
escalation_by_urgency:
  routine:
    steps: [{notify: quinn, wait_minutes: 30}]
    callback_minutes: 120
  emergency:
    steps: [{notify: sam, wait_minutes: 5}]
steps:
  take: {type: take_message}
"""
FLOW = Flow.model_validate(yaml.safe_load(textwrap.dedent(CLIENT)))
NIGHT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)  # 02:00 in London


def test_an_urgent_message_is_owed_a_call_back_an_hour_after_it_was_taken() -> None:
    assert callback_due(FLOW, Urgency.urgent, NIGHT) == NIGHT + dt.timedelta(hours=1)


def test_a_routine_message_in_quiet_hours_counts_from_when_the_contact_can_be_told() -> None:
    seven_am = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC)
    assert callback_due(FLOW, Urgency.routine, NIGHT) == seven_am + dt.timedelta(hours=2)


def test_an_urgency_with_no_promise_has_no_deadline() -> None:
    assert callback_due(FLOW, Urgency.emergency, NIGHT) is None


def test_at_the_deadline_a_message_nobody_called_back_is_escalated_again() -> None:
    due = NIGHT + dt.timedelta(hours=1)

    def verdict(now: dt.datetime, **facts: bool) -> AtDeadline:
        state = {"called_back": False, "closed": False, "escalation_active": False} | facts
        return at_deadline(due, now, **state)

    assert verdict(due - dt.timedelta(seconds=1)) is AtDeadline.not_due
    assert verdict(due) is AtDeadline.reescalate
    assert verdict(due, called_back=True) is AtDeadline.met
    assert verdict(due, closed=True) is AtDeadline.met
    assert verdict(due - dt.timedelta(minutes=5), called_back=True) is AtDeadline.met
    assert verdict(due, escalation_active=True) is AtDeadline.escalating
