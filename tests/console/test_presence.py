"""A PA's presence: what they choose, what calls make of it, and offline by itself once their
console has been gone a while."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.console.presence import (
    GONE_AFTER,
    Standing,
    State,
    may_choose,
    may_take_calls,
    presence_now,
)
from tests.clock import FakeClock
from tests.console.conftest import AddPa, presence_of

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
EARLIER = NOW - dt.timedelta(minutes=30)


def test_a_pa_whose_console_is_open_is_as_they_said() -> None:
    seen = NOW - dt.timedelta(seconds=20)
    assert presence_now(State.available, EARLIER, seen, NOW) == Standing(State.available, EARLIER)


@pytest.mark.parametrize("state", [State.available, State.on_break, State.wrap_up])
def test_a_pa_whose_console_has_been_gone_a_minute_is_offline_since_it_went(state: State) -> None:
    seen = NOW - GONE_AFTER - dt.timedelta(seconds=5)
    assert presence_now(state, EARLIER, seen, NOW) == Standing(State.offline, seen + GONE_AFTER)


def test_a_pa_on_a_call_stays_on_it_whatever_their_browser_does() -> None:
    seen = NOW - dt.timedelta(hours=1)
    assert presence_now(State.on_call, EARLIER, seen, NOW).state is State.on_call


def test_only_available_pas_are_offered_calls() -> None:
    assert may_take_calls(Standing(State.available, NOW))
    for state in (State.on_call, State.wrap_up, State.on_break, State.offline):
        assert not may_take_calls(Standing(state, NOW))


def test_a_pa_cannot_walk_away_from_a_call_or_its_wrap_up() -> None:
    assert may_choose(State.offline, State.available)
    assert may_choose(State.available, State.on_break)
    assert not may_choose(State.on_call, State.on_break)
    assert not may_choose(State.wrap_up, State.available)
    assert not may_choose(State.available, State.on_call)


def test_a_pa_sets_their_presence_in_the_console(
    add_pa: AddPa, session_factory: sessionmaker[Session]
) -> None:
    pa = add_pa(available=False)
    assert presence_of(session_factory, pa.user_id) == "none"
    assert "Set me available" in pa.page("/console").text
    assert presence_of(session_factory, pa.user_id) == "offline"  # until they say otherwise

    pa.set_presence("available")
    assert presence_of(session_factory, pa.user_id) == "available"
    assert "Set me available" not in pa.page("/console").text

    pa.set_presence("on_break")
    page = pa.page("/console").text
    assert "On a break" in page
    assert "Set me available" in page


def test_a_pa_whose_console_is_gone_goes_offline_and_stays_so_until_they_choose(
    add_pa: AddPa, clock: FakeClock, session_factory: sessionmaker[Session]
) -> None:
    supervisor = add_pa("lee@nightdesk.test", role=Role.supervisor, name="Lee", phone=None)
    pa = add_pa(name="Sam Taylor")
    assert "Available" in supervisor.page("/console/supervisor").text

    clock.advance(seconds=GONE_AFTER.total_seconds() + 1)

    team = supervisor.page("/console/supervisor").text
    assert "Offline" in team.split("Sam Taylor", 1)[1].split("</tr>", 1)[0]
    pa.page("/console")  # back at the desk: still offline until they say otherwise
    assert presence_of(session_factory, pa.user_id) == "offline"
