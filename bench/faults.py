"""The long fault run: `uv run python -m bench.faults [--calls N]`. See bench/README.md.

The short suite's harness (tests/faults/service.py), bigger and on PostgreSQL, with everything
going wrong at once while calls come in:
  - two `nightdesk serve` replicas (dispatcher off) behind a round-robin balancer, so each
    call's webhooks are spread across both, and two `nightdesk worker`s;
  - the fake Twilio failing one request in three: a 500, a 429, a 15 s stall (past the 10 s
    timeout: taken, never answered), in turn;
  - PostgreSQL stopped for a while and started again;
  - one replica SIGKILLed and started again on its socket; both workers SIGKILLed while a
    text is in flight at Twilio, and started again.
Counted from outside: calls, messages per call (exactly 1), texts per message's contact
(exactly 1). Exits 1 when a message is lost or anything is doubled.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from app.clients.flows import sync_flows
from app.db import transaction, upgrade_database
from app.telephony.sandbox.fake_twilio import FakeTwilio
from bench.servers import code_version, describe_machine, write_results
from scripts.throwaway_postgres import ThrowawayServer, throwaway_postgres_server
from tests.faults.service import (
    Count,
    Placed,
    Service,
    parsed_flows,
    place_calls,
    settled,
    wait_until,
)

PUBLIC_URL = "http://nightdesk.bench"  # what Twilio calls; the balancer picks a replica
STAGGER = 0.3  # seconds between callers


class Balancer(httpx.BaseTransport):
    """A round-robin load balancer in front of the replicas: each request to the next one."""

    def __init__(self, replicas: list[Service]) -> None:
        self._replicas = itertools.cycle(replicas)
        self._lock = threading.Lock()
        self._transport = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            replica = next(self._replicas)
        request.url = request.url.copy_with(host="127.0.0.1", port=replica.port)
        return self._transport.handle_request(request)


def status_callbacks_to(replicas: list[Service]) -> Any:
    """How the fake Twilio's status callbacks reach the service: through the balancer, and on
    to the other replica when one does not answer (as a balancer's health check would)."""
    order = itertools.count()

    def deliver(url: str, params: dict[str, str], headers: dict[str, str]) -> None:
        first = next(order)
        error: Exception | None = None
        for turn in range(len(replicas)):
            replica = replicas[(first + turn) % len(replicas)]
            target = httpx.URL(url).copy_with(host="127.0.0.1", port=replica.port)
            try:
                response = httpx.post(target, data=params, headers=headers, timeout=15)
                if response.status_code < 500:
                    return
                error = RuntimeError(f"HTTP {response.status_code}")
            except httpx.TransportError as exc:
                error = exc
        raise RuntimeError(f"callback undelivered: {error}")

    return deliver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--stall", type=float, default=15.0, help="seconds a stalled request lasts")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds PostgreSQL is down")
    args = parser.parse_args(argv)
    machine = describe_machine()
    machine["commit"] = code_version()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="nightdesk-bench-faults-") as tmp,
        throwaway_postgres_server("nightdesk_faults") as postgres,
    ):
        figures = run(Path(tmp), postgres, args.calls, args.stall, args.outage)
    figures["seconds"] = round(time.monotonic() - started, 1)
    report(figures)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    write_results("faults", stamp, {"when": stamp, "machine": machine, "figures": figures})
    return 0 if figures["lost"] == 0 and figures["duplicates"] == 0 else 1


def run(
    workdir: Path, postgres: ThrowawayServer, calls: int, stall: float, outage: float
) -> dict[str, Any]:
    url = postgres.url
    upgrade_database(url)
    engine = create_engine(url)
    with transaction(sessionmaker(engine)) as session:
        sync_flows(session, parsed_flows(calls))
    engine.dispose()
    replicas: list[Service] = []
    fake = FakeTwilio(deliver=status_callbacks_to(replicas))
    fake.misbehave(3, [500, 429, None], stall=stall, path_contains="/Messages.json")
    fake.start()
    off = {"NIGHTDESK_RUN_DISPATCHER": "false", "NIGHTDESK_TWILIO_TIMEOUT": "10"}
    on = {"NIGHTDESK_TWILIO_TIMEOUT": "10"}
    replicas += [Service(url, fake, workdir, f"replica-{i}", False, PUBLIC_URL, off) for i in "ab"]
    workers = [Service(url, fake, workdir, f"worker-{i}", True, PUBLIC_URL, on) for i in "12"]
    events: list[str] = []
    placed: list[Placed] = []
    t0 = time.monotonic()

    def note(event: str) -> None:
        events.append(f"{time.monotonic() - t0:6.1f} s  {event}")
        print(events[-1], flush=True)

    try:
        for service in [*replicas, *workers]:
            service.start(deadline=60)
        note(f"{calls} callers start ringing, one every {STAGGER} s")
        ringing = time.monotonic()
        callers = place_calls(replicas[0], calls, placed, stagger=STAGGER, listening=0.5,
                              transport=Balancer(replicas))  # fmt: skip

        def at(seconds: float) -> None:  # the scenario's clock: faults at set moments
            time.sleep(max(0.0, ringing + seconds - time.monotonic()))

        at(4)
        note("PostgreSQL stops")
        postgres.stop()
        down = (time.monotonic(), 0.0)
        at(4 + outage)
        postgres.start()
        down = (down[0], time.monotonic())
        note("PostgreSQL is back")
        at(8 + outage)
        note("replica a SIGKILLed, and started again on its socket")
        killed = time.monotonic()
        replicas[0].kill()
        replicas[0].start(deadline=60)
        note("replica a is back")
        at(12 + outage)
        wait_until(lambda: bool(in_flight(fake)), 60, "a text in flight at Twilio")
        cut = len(in_flight(fake))
        note(f"both workers SIGKILLed with {cut} request(s) in flight at Twilio, and started again")
        for worker in workers:
            worker.kill()
        for worker in workers:
            worker.start()
        for caller in callers:
            caller.join(timeout=180)
        note("every caller has hung up")
        wait_until(lambda: settled(url), 600, "every notification settled")
        note("every notification settled")
        count = Count.take(replicas[1], calls)
        spooled = sum(
            log.read_text(errors="replace").count('"callback_spooled"')
            for log in workdir.glob("replica-*.log")
        )
        left = sum(len(list(workdir.glob(f"spool-{r.name}/*.json"))) for r in replicas)
    finally:
        for service in [*replicas, *workers]:
            service.stop()
        fake.stop()
    statuses = Counter(status for p in placed for _path, status in p.conversation.requests)
    fallbacks = sum(
        1 for p in placed for line in p.conversation.lines if "fallback URL" in line.text
    )
    per_call = Counter(count.messages_per_call.values())
    per_message = Counter(count.texts_per_message.values())
    return {
        "calls": calls,
        "calls_during_the_outage": sum(1 for p in placed if overlaps(p, *down)),
        "calls_cut_by_the_kill": sum(1 for p in placed if p.began < killed < p.ended),
        "sends_cut_by_the_kill": cut,
        "calls_with_one_message": per_call.get(1, 0),
        "lost": per_call.get(0, 0),
        "duplicates": sum(n for k, n in per_call.items() if k > 1)
        + sum(n for k, n in per_message.items() if k > 1),
        "messages_with_one_text": per_message.get(1, 0),
        "messages_without_a_text": per_message.get(0, 0),
        "texts": count.texts_in_all,
        "twilio_requests": len(fake.requests),
        "twilio_failures": sum(1 for r in fake.requests if r.status in (429, 500)),
        "callbacks_spooled": spooled,
        "spool_left": left,
        "caller_fallbacks": fallbacks,
        "webhook_statuses": dict(sorted(statuses.items())),
        "events": events,
    }


def in_flight(fake: FakeTwilio) -> list[object]:
    """Requests the fake Twilio has taken and not yet answered (a stall, as a rule)."""
    return [r for r in fake.requests if not r.status]


def overlaps(call: Placed, start: float, end: float) -> bool:
    return call.began < end and start < call.ended


FIGURES = [
    "calls", "calls_during_the_outage", "calls_cut_by_the_kill", "sends_cut_by_the_kill",
    "calls_with_one_message",
    "lost", "duplicates", "messages_with_one_text", "messages_without_a_text", "texts",
    "twilio_requests", "twilio_failures", "callbacks_spooled", "spool_left", "caller_fallbacks",
    "webhook_statuses", "seconds",
]  # fmt: skip


def report(figures: dict[str, Any]) -> None:
    print()
    for key in FIGURES:
        print(f"{key:<26} {figures[key]}")
    verdict = "PASS" if figures["lost"] == 0 and figures["duplicates"] == 0 else "FAIL"
    print(f"\n{verdict}  nothing lost, nothing sent twice")


if __name__ == "__main__":
    sys.exit(main())
