"""The server SIGKILLed with calls in flight and texts being sent, and started again: callers
repeat what went unanswered and take the fallback URL, as Twilio does. Counted from outside,
every call has exactly one message and every message reached its contact exactly once."""

from __future__ import annotations

import time
from pathlib import Path

from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.faults.service import Count, Placed, place_calls, serving, settled, wait_until


def test_a_server_killed_mid_call_and_mid_send_loses_nothing_and_sends_nothing_twice(
    database_url: str, fake_twilio: FakeTwilio, clients: int, tmp_path: Path
) -> None:
    fake_twilio.delay_next(0.2, count=10**6, path_contains="/Messages.json")  # sends in flight
    placed: list[Placed] = []
    with serving(database_url, fake_twilio, tmp_path) as service:
        callers = place_calls(service, clients, placed)
        wait_until(lambda: len(fake_twilio.messages) >= 2, 30, "the first texts go out")
        killed_at = time.monotonic()
        service.kill()  # calls mid-flow, texts mid-send
        service.start()
        for caller in callers:
            caller.join(timeout=90)
        wait_until(lambda: settled(database_url), 40, "every notification settled")
        count = Count.take(service, clients)

    assert count.exactly_once(), count
    assert len(placed) == clients
    assert any(call.began < killed_at < call.ended for call in placed), "no call was cut"
