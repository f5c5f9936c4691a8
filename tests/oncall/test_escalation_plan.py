"""Escalation decided as pure functions: whom a step notifies, by what, what comes next."""

from __future__ import annotations

import datetime as dt
import textwrap

import yaml

from app.flows.schema import Channel, Flow, Urgency
from app.oncall.escalation import (
    Position,
    next_channel,
    next_position,
    notifications_at,
    quiet_until,
    wait_after,
)

CLIENT = """
client: plan
name: Plan Plumbing
numbers: ["+441134960900"]
timezone: Europe/London
contacts:
  - {id: sam, name: Sam, phone: "+447911123456", email: sam@example.com, channels: [sms, voice]}
  - {id: alex, name: Alex, phone: "+447911654321", channels: [voice, sms],
     quiet_hours: ["22:00-07:00"]}
  - {id: office, name: Office, email: office@example.com, channels: [email]}
groups: {engineers: [sam, alex]}
rotation: {members: [sam, alex], handoff: "08:00", starts: 2026-01-05}
escalation:
  steps:
    - {notify: on_call, wait_minutes: 10}
    - {notify: engineers, channels: [sms, voice], wait_minutes: 5}
  repeat: 1
steps:
  take: {type: take_message}
"""
FLOW = Flow.model_validate(yaml.safe_load(textwrap.dedent(CLIENT)))
THURSDAY_NIGHT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
THURSDAY_NOON = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_the_first_step_notifies_whoever_is_on_call_on_their_preferred_channel() -> None:
    (owed,) = notifications_at(FLOW, Urgency.urgent, Position(0, 0), THURSDAY_NIGHT)
    assert (owed.contact, owed.channel, owed.failover) == ("sam", Channel.sms, True)


def test_a_step_naming_channels_sends_on_all_of_them_to_everyone_in_the_group() -> None:
    owed = notifications_at(FLOW, Urgency.urgent, Position(0, 1), THURSDAY_NIGHT)
    assert {(o.contact, o.channel) for o in owed} == {
        ("sam", Channel.sms), ("sam", Channel.voice),
        ("alex", Channel.sms), ("alex", Channel.voice),
    }  # fmt: skip
    assert not any(o.failover for o in owed)


def test_after_a_failure_the_next_channel_in_order_of_preference_is_tried() -> None:
    sam = FLOW.contact("sam")
    assert sam is not None
    assert next_channel(sam, after=Channel.sms) == (Channel.voice, "+447911123456")
    assert next_channel(sam, after=Channel.voice) is None


def test_the_policy_runs_its_steps_then_repeats_then_stops() -> None:
    policy = FLOW.escalation
    assert next_position(policy, Position(0, 0)) == Position(0, 1)
    assert next_position(policy, Position(0, 1)) == Position(1, 0)
    assert next_position(policy, Position(1, 1)) is None
    assert wait_after(policy, Position(0, 1)) == dt.timedelta(minutes=5)


def test_routine_messages_wait_out_quiet_hours_but_urgent_ones_do_not() -> None:
    alex = FLOW.contact("alex")
    assert alex is not None
    morning = dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC)
    assert quiet_until(alex, FLOW, Urgency.routine, THURSDAY_NIGHT) == morning
    assert quiet_until(alex, FLOW, Urgency.urgent, THURSDAY_NIGHT) is None
    assert quiet_until(alex, FLOW, Urgency.routine, THURSDAY_NOON) is None


def test_quiet_hours_follow_the_local_clock_in_summer_time() -> None:
    alex = FLOW.contact("alex")
    assert alex is not None
    summer_night = dt.datetime(2026, 7, 1, 1, 0, tzinfo=dt.UTC)  # 02:00 BST
    assert quiet_until(alex, FLOW, Urgency.routine, summer_night) == dt.datetime(
        2026, 7, 1, 6, 0, tzinfo=dt.UTC
    )  # 07:00 BST
