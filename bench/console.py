"""The PA console under load: `uv run python -m bench.console [--backend sqlite|postgresql]`.

With PAs signed in and each with the console's live stream open (on PostgreSQL spread over two
`nightdesk serve` replicas, so updates cross processes through LISTEN/NOTIFY):

1. **time to screen**: callers ring one after another and ask for a person; from the moment
   the webhook that puts the caller in the queue is sent to the moment *every* PA's stream has
   shown that caller: p50, p99, max;
2. **claim races**: two PAs press Take on the same caller at the same instant (a barrier), round
   after round: exactly one must win each;
3. **page time**: GET /console, one after another, with every stream still open: p50, p99.

Twilio is the local fake (`app.telephony.sandbox`), in this process: callers wait in its queue in
real time, its signed callbacks reach the servers over HTTP. Times are wall-clock on loopback,
so they include the client's side: an upper bound of the server's time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.accounts.models import Role
from app.accounts.service import add_user, sign_in_link
from app.db import make_engine, make_session_factory, transaction
from app.telephony.sandbox.caller import Press, SimulatedCaller
from app.telephony.sandbox.fake_twilio import FakeTwilio
from app.telephony.sandbox.webhooks import new_sid
from bench.servers import (
    BENCH_TOKEN,
    code_version,
    database,
    free_port,
    nightdesk_server,
    prepare_database,
    write_results,
)

ACCOUNT = "AC" + "b" * 32
HARBOUR_LAW = "+61255501234"
CALLER = "+61491570999"
TIMEOUT = 10.0


@dataclass
class Stream:
    """One PA's live stream: the `queue` events it received, with when they arrived."""

    base_url: str
    cookies: dict[str, str]
    events: list[tuple[float, str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def run(self, stop: threading.Event) -> None:
        try:
            self._read(stop)
        except httpx.HTTPError:
            if not stop.is_set():  # the server going away at the end is no news
                raise

    def _read(self, stop: threading.Event) -> None:
        name, data = "", []
        with (
            httpx.Client(base_url=self.base_url, cookies=self.cookies) as client,
            client.stream("GET", "/console/events", timeout=httpx.Timeout(5, read=None)) as r,
        ):
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                elif not line:
                    if name == "queue":
                        with self.changed:
                            self.events.append((time.monotonic(), "\n".join(data)))
                            self.changed.notify_all()
                    name, data = "", []

    def shown(self, text: str, since: float, timeout: float = TIMEOUT) -> float:
        """When a queue event showing `text` first arrived after `since`."""
        with self.changed:
            found: list[float] = []

            def seen() -> bool:
                found[:] = [at for at, data in self.events if at >= since and text in data]
                return bool(found)

            if not self.changed.wait_for(seen, timeout):
                raise SystemExit(f"bench: a console never showed {text!r}")
            return found[0]


@dataclass
class Pa:
    user_id: int
    client: httpx.Client
    csrf: str = ""

    def take(self, entry_id: int) -> str:
        response = self.client.post(
            f"/console/queue/{entry_id}/take", data={"csrf_token": self.csrf}
        )
        return str(response.headers.get("location", ""))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank) and max, in milliseconds."""
    ordered = sorted(values)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return {k: round(v * 1000, 1) for k, v in
            (("p50_ms", at(50)), ("p99_ms", at(99)), ("max_ms", ordered[-1]))}  # fmt: skip


def sign_in(base_url: str, link: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=20)
    page = client.get(f"/login/link/{link}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post(f"/login/link/{link}", data={"csrf_token": token.group(1)})
    return client


def add_pas(url: str, count: int) -> list[tuple[int, str]]:
    """PAs with phones, and a one-time sign-in link each."""
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    found = []
    with transaction(make_session_factory(engine)) as session:
        for n in range(count):
            phone = f"+1500555{n:04d}"
            user = add_user(session, f"pa{n}@bench.test", Role.pa, now, name=f"PA {n}", phone=phone)
            found.append((user.id, sign_in_link(session, user, now)))
    engine.dispose()
    return found


def run(backend: str, pas: int, callers: int, races: int, pages: int) -> dict[str, Any]:
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nd-console-")))
        url, version = stack.enter_context(database(backend, workdir))
        fake = stack.enter_context(FakeTwilio(ACCOUNT, BENCH_TOKEN))
        replicas = 2 if backend == "postgresql" else 1
        ports = [free_port() for _ in range(replicas)]
        overrides = {
            "NIGHTDESK_TWILIO_API_BASE": fake.base_url,
            "NIGHTDESK_TWILIO_ACCOUNT_SID": ACCOUNT,
        }
        prepare_database(url, ports[0], workdir, overrides)
        for port in ports:
            stack.enter_context(nightdesk_server(url, port, workdir, overrides))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        people = []
        for n, (user_id, link) in enumerate(add_pas(url, pas)):
            client = sign_in(bases[n % replicas], link)
            stack.callback(client.close)
            page = client.get("/console").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token
            pa = Pa(user_id, client, token.group(1))
            client.post("/console/presence", data={"csrf_token": pa.csrf, "state": "available"})
            fake.set_call_outcome(f"+1500555{n:04d}", "in-progress")  # rings until hung up
            people.append(pa)
        stop = threading.Event()
        streams = [Stream(str(pa.client.base_url), dict(pa.client.cookies)) for pa in people]
        threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in streams]
        for thread in threads:
            thread.start()
        for stream in streams:
            stream.shown("No callers waiting", 0)
        print(f"{backend}: {pas} PAs on {replicas} server(s), streams open", flush=True)

        to_screen = time_to_screen(fake, bases[0], streams, callers)
        print(f"  time to every screen: {percentiles(to_screen)}", flush=True)
        winners = claim_races(fake, bases[0], people[:2], races)
        print(
            f"  claim races: {races} rounds, winners per round {sorted(set(winners))}", flush=True
        )
        page_times = page_time(people[0].client, pages)
        print(f"  GET /console with {pas} streams open: {percentiles(page_times)}", flush=True)
        stop.set()
        return {
            "backend": backend, "database": version, "code": code_version(), "pas": pas,
            "replicas": replicas, "callers": callers,
            "time_to_every_screen": percentiles(to_screen),
            "claim_races": {"rounds": races, "rounds_with_one_winner": winners.count(1)},
            "console_page": percentiles(page_times),
        }  # fmt: skip
    raise AssertionError("unreachable")


def ring(fake: FakeTwilio, base: str) -> tuple[str, threading.Thread, list[float]]:
    """A caller who asks for a person; the list fills with when each of their webhooks left."""
    sid, sent = new_sid("CA"), []
    hooks = {"request": [lambda _request: sent.append(time.monotonic())]}
    http = httpx.Client(base_url=base, timeout=20, event_hooks=hooks)
    caller = SimulatedCaller(
        http, public_url=base, auth_token=BENCH_TOKEN, account_sid=ACCOUNT, from_number=CALLER,
        to_number=HARBOUR_LAW, script=[Press("0")], call_sid=sid, switchboard=fake,
        hold_wait=60, transfers="no-answer",
    )  # fmt: skip
    thread = threading.Thread(target=caller.run, daemon=True)
    thread.start()
    return sid, thread, sent


def time_to_screen(fake: FakeTwilio, base: str, streams: list[Stream], callers: int) -> list[float]:
    """Each caller in turn: from their entry's commit to every PA's screen showing them."""
    times = []
    for n in range(1, callers + 1):
        sid, thread, sent = ring(fake, base)
        arrivals = [s.shown(f'data-entry="{n}"', 0) for s in streams]
        # The caller's last webhook before anyone saw them is the one that queued them.
        queued = max(at for at in list(sent) if at <= min(arrivals))
        times.append(max(arrivals) - queued)
        fake.hang_up(sid)
        thread.join(TIMEOUT)
        for stream in streams:
            stream.shown("No callers waiting", max(arrivals))
    return times


def claim_races(fake: FakeTwilio, base: str, pair: list[Pa], rounds: int) -> list[int]:
    """Two PAs take one waiting caller at the same instant; the winner's phone then hangs up,
    which gives the caller back to the queue for the next round."""
    sid, thread, _ = ring(fake, base)
    entry = _wait(lambda: _entry_id(pair[0].client))
    winners = []
    for _ in range(rounds):
        start = threading.Barrier(len(pair))
        answers: dict[int, str] = {}

        def race(
            index: int, barrier: threading.Barrier = start, found: dict[int, str] = answers
        ) -> None:
            barrier.wait()
            found[index] = pair[index].take(entry)

        racers = [threading.Thread(target=race, args=(i,)) for i in range(len(pair))]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
        winners.append(sum(a.startswith("/console/calls/") for a in answers.values()))
        for call in fake.calls:
            if call.to.startswith("+1500555") and call.end_time is None:
                fake.hang_up(call.sid)
        _wait(lambda: all(_available(pa) for pa in pair) and _entry_id(pair[0].client) == entry)
    fake.hang_up(sid)
    thread.join(TIMEOUT)
    return winners


def page_time(client: httpx.Client, pages: int) -> list[float]:
    times = []
    for _ in range(pages):
        started = time.perf_counter()
        assert client.get("/console").status_code == 200
        times.append(time.perf_counter() - started)
    return times


def _entry_id(client: httpx.Client) -> int | None:
    found = re.search(r'action="/console/queue/(\d+)/take"', client.get("/console").text)
    return int(found.group(1)) if found else None


def _available(pa: Pa) -> bool:
    return "You are <strong>Available</strong>" in pa.client.get("/console").text


def _wait(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit("bench: waited too long")
        time.sleep(0.01)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pas", type=int, default=20)
    parser.add_argument("--callers", type=int, default=30)
    parser.add_argument("--races", type=int, default=100)
    parser.add_argument("--pages", type=int, default=300)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run(b, args.pas, args.callers, args.races, args.pages) for b in backends]
    write_results("console", time.strftime("%Y%m%d-%H%M%S"), {"runs": results})


if __name__ == "__main__":
    main()
