"""/livez as a supervisor's liveness probe sees it: alive while the dispatcher keeps cycling,
503 once it has been stuck for five minutes, alive again when it moves; and a dispatcher loop
that ends anyway is started again."""

from __future__ import annotations

import datetime as dt
import threading

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.dispatch.dispatcher import STALLED_AFTER, is_stalled, keep_running
from tests.clock import FakeClock

T0 = dt.datetime(2026, 12, 24, 22, 0, tzinfo=dt.UTC)


def test_a_dispatcher_is_stalled_only_when_its_last_cycle_is_too_long_ago() -> None:
    moment = dt.timedelta(seconds=1)
    assert not is_stalled(T0, T0, T0 + STALLED_AFTER)
    assert is_stalled(T0, T0, T0 + STALLED_AFTER + moment)
    assert not is_stalled(T0, None, T0 + STALLED_AFTER), "before its first cycle: since its start"
    assert is_stalled(T0, None, T0 + STALLED_AFTER + moment)
    assert is_stalled(None, None, T0), "a dispatcher that never started"


class Stuck:
    """A module that hangs in its first run until released: a loop stuck inside a cycle."""

    name = "stuck"
    every = dt.timedelta(0)
    batch = 1

    def __init__(self) -> None:
        self.entered, self.release, self.ran_again = (threading.Event() for _ in range(3))
        self.runs = 0

    def run(self, now: dt.datetime) -> int:
        self.runs += 1
        if self.runs == 1:
            self.entered.set()
            self.release.wait(timeout=30)
        else:
            self.ran_again.set()
        return 0


def test_livez_fails_while_the_dispatcher_is_stuck_and_recovers_when_it_moves(
    app: FastAPI, clock: FakeClock
) -> None:
    stuck = Stuck()
    app.state.dispatcher.modules.insert(0, stuck)
    with TestClient(app) as client:
        assert stuck.entered.wait(timeout=10)
        assert client.get("/livez").status_code == 200, "stuck for a moment only"

        clock.advance(minutes=6)
        stalled = client.get("/livez")
        assert stalled.status_code == 503
        assert stalled.json() == {"status": "dispatcher stalled", "dispatcher_last_cycle": None}
        assert client.get("/readyz").status_code == 200, "webhooks still work: stay in rotation"

        stuck.release.set()
        assert stuck.ran_again.wait(timeout=10)  # so the stuck cycle has finished
        alive = client.get("/livez")
        assert alive.status_code == 200
        assert alive.json()["dispatcher_last_cycle"] == clock().isoformat()


class Ends(BaseException):
    """Something no `except Exception` catches, ending the loop."""


def test_a_dispatcher_loop_that_ends_is_started_again() -> None:
    stop, starts = threading.Event(), []

    def loop(_stop: threading.Event) -> None:
        starts.append(1)
        if len(starts) == 1:
            raise Ends
        if len(starts) == 2:
            return  # returned without being asked to
        stop.set()

    keep_running(loop, stop, pause=0)

    assert len(starts) == 3
