"""Twilio's REST API failing one request in three (a 500, a 429, a stall past our timeout, in
turn, for sends and look-ups alike): every message still reaches its contact exactly once."""

from __future__ import annotations

from pathlib import Path

from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.faults.service import Count, Placed, place_calls, serving, settled, wait_until


def test_a_twilio_failing_one_request_in_three_still_notifies_everyone_exactly_once(
    database_url: str, fake_twilio: FakeTwilio, clients: int, tmp_path: Path
) -> None:
    # The stall outlasts the server's 1 s timeout: Twilio took the text, we never heard.
    fake_twilio.misbehave(3, [500, 429, None], stall=2.0, path_contains="/Messages.json")
    placed: list[Placed] = []
    with serving(database_url, fake_twilio, tmp_path) as service:
        for caller in place_calls(service, clients, placed, stagger=0.1, listening=0.05):
            caller.join(timeout=60)
        wait_until(lambda: settled(database_url), 60, "every notification settled")
        count = Count.take(service, clients)

    assert count.exactly_once(), count
    assert {r.status for r in fake_twilio.requests} >= {429, 500}, "Twilio did fail"
