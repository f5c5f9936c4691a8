"""Every console sees the queue change within a second: server-sent events from a real server
(uvicorn on loopback), on SQLite and on PostgreSQL."""

from __future__ import annotations

import time

import httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.console.presence import GONE_AFTER
from app.telephony.sandbox.caller import Press
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.clock import FakeClock
from tests.console.conftest import HARBOUR_LAW, AddPa, Ring, presence_of
from tests.support.live import EventStream


def watch(live_url: str, browser: TestClient, path: str = "/console/events") -> EventStream:
    """A PA's console open in a browser tab: its live stream, with their session cookie."""
    return EventStream(live_url, httpx.Cookies(dict(browser.cookies)), path)


def test_a_new_caller_appears_on_every_available_pas_console_within_a_second(
    live_url: str,
    ring: Ring,
    add_pa: AddPa,
    fake_twilio: FakeTwilio,
) -> None:
    tabs = [
        watch(live_url, add_pa("sam@nightdesk.test").browser),
        watch(live_url, add_pa("ana@nightdesk.test", phone="+15005550007").browser),
    ]
    for tab in tabs:
        tab.next("queue", "No callers waiting")

    started = time.monotonic()
    caller = ring(HARBOUR_LAW, Press("0"))
    arrivals = [tab.next("queue", "Harbour Law").at - started for tab in tabs]

    # From the first ring, through the flow's menu, to both screens: well within a second.
    assert max(arrivals) < 1.0, arrivals
    fake_twilio.hang_up(caller.call_sid)
    for tab in tabs:
        tab.next("queue", "No callers waiting")
        tab.close()


def test_a_pa_whose_console_closes_goes_offline_a_minute_later(
    live_url: str,
    add_pa: AddPa,
    clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:
    supervisor = add_pa("lee@nightdesk.test", role=Role.supervisor, name="Lee", phone=None)
    board = watch(live_url, supervisor.browser, "/console/events?team=true")
    board.next("team", "Available")
    pa = add_pa(name="Sam Taylor")
    tab = watch(live_url, pa.browser)
    tab.next("me", "Available")
    board.next("team", "Sam Taylor")

    tab.close()
    clock.advance(seconds=GONE_AFTER.total_seconds() - 1)
    assert "Available" in supervisor.page("/console/supervisor").text.split("Sam Taylor")[1][:200]
    clock.advance(seconds=2)

    row = supervisor.page("/console/supervisor").text.split("Sam Taylor")[1][:200]
    assert "Offline" in row
    pa.page("/console")
    assert presence_of(session_factory, pa.user_id) == "offline"
    board.close()
