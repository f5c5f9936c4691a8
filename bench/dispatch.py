"""Benchmark of the dispatcher: `uv run python -m bench.dispatch [--quick] [--backend ...]`.

Measures, against a real `nightdesk serve` (one worker, dispatcher inside; or `--worker`) and the
local fake of Twilio's REST API running in this process:
  1. notification latency: from a message saved (the 200 answer to the caller's keypress, the
     POST /twilio/voice/step that saved it) to its first SMS request reaching the fake Twilio,
     p50/p99, with 10 and with 100 messages a second arriving (open loop);
     and then 100 a second again while 32 callers (--background-callers) make whole calls on the
     same server, a step a second each, as in bench.webhooks' busy night: the target's phase;
  2. escalation lateness: how late a second step (`wait_minutes: 1`) fires against its due time,
     for messages whose second step falls due during the 10/s phase and during the 100/s phase,
     from the server's `nightdesk_escalation_lateness_seconds` histogram and from the fake
     (second-step SMS arrival minus save time + 60 s);
on SQLite and on a throwaway PostgreSQL. Prints a table with pass/fail against the targets and
writes bench/results/dispatch-<time>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvloop
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from app.telephony.sandbox.fake_twilio import FakeTwilio
from bench.load import WHOLE_CALL_STEPS, CallBook, Connection, Tally, busy_night, percentile
from bench.servers import (
    BENCH_TOKEN,
    ROOT,
    Server,
    database,
    describe_machine,
    free_port,
    machine_cpu_seconds,
    nightdesk_command,
    nightdesk_env,
    nightdesk_server,
    prepare_database,
    stolen_cpu_seconds,
    stop_process,
    twilio_settings,
    write_results,
)

ACCOUNT_SID = "AC" + "d" * 32
CALLER = "+441134990000"  # a landline: no caller texts (and caller_updates is off anyway)
NAN = float("nan")

# The targets.
MAX_P99_MS_AT_100 = 250.0
MAX_LATENESS_S = 1.0

ESCALATION_WAIT_S = 60.0  # wait_minutes: 1, the least a flow may say
WARMUP, WARMUP_RATE = 5, 5.0  # calls before anything is measured, and how fast they come
IDLE_CONNECTION_S = 2.0  # uvicorn closes keep-alive connections idle for 5 s
# The loaded phase: the background calls start PAUSE_S after the 100/s phase's last keypress
# (its SMS are all out long before), over BACKGROUND_LEAD_S: a whole call's length, so that by
# the loaded phase the callers are at different steps of their calls (see bench.load's
# busy_night), and their messages are saved all through it, not in one burst.
BACKGROUND_EVERY_S = 1.0  # a step a second each, as in bench.webhooks' busy night
BACKGROUND_LEAD_S, PAUSE_S = WHOLE_CALL_STEPS * BACKGROUND_EVERY_S, 2.0
BACKGROUND_FLOW = ROOT / "voice_flows" / "acme-plumbing.yaml"  # the whole calls of bench.load
LATENESS_METRIC = "nightdesk_escalation_lateness_seconds"
MODULE_METRIC = "nightdesk_dispatch_module_seconds"


@dataclass(frozen=True)
class Profile:
    slow_rate: float  # messages/s in the first latency phase
    slow_s: float
    fast_rate: float  # messages/s in the second, and in the loaded phase
    fast_s: float
    loaded_s: float  # the loaded phase: fast_rate with the background calls on the same server
    lateness_messages: int  # per phase: second steps falling due in it (0: no lateness part)
    drain_s: float  # how long to wait for the last first-step SMS once arrivals stop


FULL = Profile(10, 10, 100, 5, loaded_s=5, lateness_messages=25, drain_s=20)
QUICK = Profile(10, 3, 100, 2, loaded_s=2, lateness_messages=0, drain_s=10)


@dataclass(frozen=True)
class Slot:
    """One message: its own client (number) and contacts, so no SMS is ever throttled.

    The dispatcher sends at most one SMS per contact per minute and bundles the rest, so for a
    latency figure every message must go to a contact who has had nothing in the last minute.
    """

    index: int
    phase: str  # "warm-up", "slow", "fast", "loaded" (fast with the background calls), or
    # "late:slow" / "late:fast" (second step due then)
    at: float  # seconds after the start at which the caller presses 1
    number: str  # the client's Twilio number: the call's To
    first: str  # step 1's contact's mobile
    second: str  # step 2's (due within the run for the "late:" slots only)


@dataclass
class Answer:
    """What the keypress that saved a slot's message came back with (time.time())."""

    sent: float = 0.0
    answered: float = 0.0
    late_send: float = 0.0  # how far behind its schedule the open loop sent it
    error: str | None = None


@dataclass
class PhaseFigures:
    phase: str
    rate: float
    messages: int
    sms_arrived: int
    missing: int  # saved, but no first-step SMS reached the fake within the drain time
    p50_ms: float
    p99_ms: float
    max_ms: float
    first_tenth_p50_ms: float  # latency of the first and last tenth of the phase's messages:
    last_tenth_p50_ms: float  # a growing backlog shows as the second well above the first
    sms_per_s: float  # first-step SMS reaching the fake, first to last arrival
    webhook_p50_ms: float
    webhook_p99_ms: float
    errors: int
    latest_send_ms: float


@dataclass
class LatenessFigures:
    during: str  # the phase in which these second steps fell due
    messages: int
    second_sms_arrived: int
    metric_count: float  # the histogram's observations in that stretch (NaN with --worker)
    metric_sum_s: float
    metric_p50_s: float  # the upper bound of the bucket holding the quantile
    metric_p99_s: float
    metric_buckets: dict[str, float]
    fake_p50_s: float  # second-step SMS at the fake minus (save time + 60 s)
    fake_p99_s: float
    fake_max_s: float


@dataclass
class Cpu:
    """CPU from a phase's first keypress to its last first-step SMS (100 = one core)."""

    phase: str
    server_pct: float
    worker_pct: float  # the `nightdesk worker` process, with --worker
    bench_pct: float  # this process: load generator, fake Twilio and its callbacks
    others_pct: float  # everything else (PostgreSQL too)
    stolen_pct: float  # taken by the hypervisor for other machines ("steal")


@dataclass
class BackgroundFigures:
    """The whole calls made on the same server during the loaded phase (and its lead-in)."""

    callers: int
    every_s: float
    seconds: float
    requests: int
    calls_finished: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    latest_send_ms: float


@dataclass
class Figures:
    backend: str
    dispatcher: str  # "in-process" (inside `nightdesk serve`) or "worker" (`nightdesk worker`)
    phases: list[PhaseFigures]
    lateness: list[LatenessFigures]
    cpu: list[Cpu]  # the 100/s phase, and the loaded phase
    cpu_ms_per_sms_slow: float  # server (+ worker) CPU per SMS sent during the 10/s phase
    module_runs: dict[str, float]  # dispatcher module runs and seconds, from /metrics
    module_seconds: dict[str, float]
    sms_total: int
    peak_rss_mb: float
    background: BackgroundFigures | None
    error_examples: list[str] = field(default_factory=list)
    # Per message, in order: [phase, sent, answered, first SMS, second SMS] (time.time(), or None)
    timeline: list[list[Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    worker: bool  # the dispatcher as a `nightdesk worker` process, not inside the server
    twilio_latency_ms: float  # how late the fake answers each Messages request
    background_callers: int  # whole calls during the loaded phase (0: no loaded phase)
    stall_one_in: int = 0  # one Messages request in this many is taken but answered late
    stall_s: float = 10.0  # that late: past the server's 10 s timeout, so its outcome is unknown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true",
        help="a ~30 s smoke run: SQLite, short phases, no escalation lateness",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default=None,
        help="database(s) to measure (default: both; sqlite with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--worker", action="store_true",
        help="run the dispatcher as a `nightdesk worker` process beside `serve` (whose own "
        "dispatcher is then off) instead of inside it",
    )  # fmt: skip
    parser.add_argument(
        "--twilio-latency", type=float, default=0.0, metavar="MS",
        help="the fake Twilio answers each Messages request this late (default 0: the fake "
        "answers in about a millisecond; Twilio's real API takes tens to hundreds)",
    )  # fmt: skip
    parser.add_argument(
        "--background-callers", type=int, default=32, metavar="N",
        help="callers making whole calls, a step a second each, on the same server during the "
        "loaded 100/s phase (default 32; 0: no loaded phase, the target then applies to the "
        "100/s phase alone)",
    )  # fmt: skip
    parser.add_argument(
        "--stall-one-in", type=int, default=0, metavar="N",
        help="one Messages request in N (sends and look-ups) is taken but answered "
        "--stall-seconds late: the isolation test (issue 10: N=100, 10 s)",
    )  # fmt: skip
    parser.add_argument("--stall-seconds", type=float, default=10.0, metavar="S")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.background_callers < 0:
        parser.error("--background-callers: 0 or more")
    if args.background_callers == 0:
        profile = dataclasses.replace(profile, loaded_s=0)
    options = Options(
        args.worker, args.twilio_latency, args.background_callers, args.stall_one_in,
        args.stall_seconds,
    )  # fmt: skip
    backends = {
        "sqlite": ["sqlite"],
        "postgresql": ["postgresql"],
        "both": ["sqlite", "postgresql"],
    }[args.backend or ("sqlite" if args.quick else "both")]
    machine = describe_machine()
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; code: {machine['commit']}"
    )
    print(
        f"dispatcher: {'a `nightdesk worker` process' if options.worker else 'inside the server'}"
        f"; the fake Twilio answers {options.twilio_latency_ms:g} ms late"
        + (
            f", and one Messages request in {options.stall_one_in} {options.stall_s:g} s late"
            if options.stall_one_in
            else ""
        )
        + "; loaded phase: "
        + (
            f"{options.background_callers} callers making whole calls, a step a second each"
            if profile.loaded_s
            else "none"
        )
    )
    started = time.monotonic()
    slots = plan(profile)
    results: list[Figures] = []
    with (
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        tempfile.TemporaryDirectory(prefix="nightdesk-bench-dispatch-") as tmp,
    ):
        workdir = Path(tmp)
        flows_dir = workdir / "flows"
        write_flows(flows_dir, slots)
        for backend in backends:
            with database(backend, workdir) as (url, version):
                machine[f"{backend}_version"] = version
                results.append(
                    measure(runner, backend, url, workdir, flows_dir, slots, profile, options)
                )
    passed = report(results, profile)
    machine["seconds"] = round(time.monotonic() - started, 1)
    save(results, machine, profile, options)
    return 0 if passed else 1


# --- the plan: one client per message ----------------------------------------------------------


def plan(profile: Profile) -> list[Slot]:
    """Every message of the run, in the order the callers press 1.

    With the lateness part, its messages come first, placed so that half their second steps fall
    due in the middle of the 10/s phase and half in the middle of the 100/s phase.
    """
    # A few calls first, not counted: the first SMS pays for the server's first connection to
    # Twilio (and the first of anything), a few hundred ms that would otherwise be a p99.
    times: list[tuple[str, float]] = [("warm-up", i / WARMUP_RATE) for i in range(WARMUP)]
    begin = (WARMUP + 1) / WARMUP_RATE
    slow_start = begin
    if profile.lateness_messages:
        n = profile.lateness_messages
        slow_start = begin + ESCALATION_WAIT_S - profile.slow_s / 2  # 1st batch due mid-phase
        fast_mid = slow_start + profile.slow_s + profile.fast_s / 2
        second_batch = fast_mid - ESCALATION_WAIT_S - profile.fast_s / 4
        spread = min(profile.slow_s, profile.fast_s) / 2  # each batch falls due over this
        times += [("late:slow", begin + i * spread / n) for i in range(n)]
        times += [("late:fast", second_batch + i * spread / n) for i in range(n)]
    times += [
        ("slow", slow_start + i / profile.slow_rate)
        for i in range(round(profile.slow_rate * profile.slow_s))
    ]
    fast_start = slow_start + profile.slow_s
    times += [
        ("fast", fast_start + i / profile.fast_rate)
        for i in range(round(profile.fast_rate * profile.fast_s))
    ]
    if profile.loaded_s:
        loaded_start = fast_start + profile.fast_s + PAUSE_S + BACKGROUND_LEAD_S
        times += [
            ("loaded", loaded_start + i / profile.fast_rate)
            for i in range(round(profile.fast_rate * profile.loaded_s))
        ]
    times.sort(key=lambda item: item[1])
    # Numbers clear of acme-plumbing's (0113 496 0xxx), the background calls' flow.
    return [
        Slot(i, phase, at, f"+44113495{i:04d}", f"+44113497{i:04d}", f"+44113498{i:04d}")
        for i, (phase, at) in enumerate(times)
    ]


def write_flows(folder: Path, slots: list[Slot]) -> None:
    """One flow file per slot: a menu, then "press 1" takes the message; step 1 texts `first`,
    step 2 (a minute later for the lateness slots, an hour for the others) texts `second`.

    Every call comes in and hears the menu before the timed part, so the server has parsed and
    cached each of these hundreds of flows by then, as it has the few of a real service; the
    keypress that saves the message is then the one request per message in the timed part.
    """
    folder.mkdir(parents=True)
    if any(slot.phase == "loaded" for slot in slots):
        shutil.copy(BACKGROUND_FLOW, folder / BACKGROUND_FLOW.name)
    for slot in slots:
        wait = 1 if slot.phase.startswith("late:") else 60
        (folder / f"bench-{slot.index:04d}.yaml").write_text(
            f"""client: bench-{slot.index:04d}
name: Bench client {slot.index}
numbers: ["{slot.number}"]
timezone: Europe/London
caller_updates: false
contacts:
  - {{id: first, name: First {slot.index}, phone: "{slot.first}", channels: [sms]}}
  - {{id: second, name: Second {slot.index}, phone: "{slot.second}", channels: [sms]}}
escalation:
  steps:
    - {{notify: first, channels: [sms], wait_minutes: {wait}}}
    - {{notify: second, channels: [sms], wait_minutes: 60}}
  repeat: 0
steps:
  menu:
    type: menu
    prompt: Press 1 to leave a message.
    options: [{{key: "1", goto: message}}]
    default: message
  message:
    type: take_message
    say: Thank you, your message has been passed on.
"""
        )


# --- one backend -------------------------------------------------------------------------------


def measure(
    runner: asyncio.Runner,
    backend: str,
    url: str,
    workdir: Path,
    flows_dir: Path,
    slots: list[Slot],
    profile: Profile,
    options: Options,
) -> Figures:
    fake = FakeTwilio(ACCOUNT_SID, BENCH_TOKEN)
    # (time.time(), To) of every SMS, as the fake creates it (before any --twilio-latency wait)
    arrivals: list[tuple[float, str]] = []
    fake.on_message = lambda record: arrivals.append((time.time(), record.to))
    if options.stall_one_in:  # first: a request it takes skips the plain latency below
        fake.misbehave(options.stall_one_in, [None], stall=options.stall_s,
                       path_contains="/Messages.json")  # fmt: skip
    if options.twilio_latency_ms:
        fake.delay_next(options.twilio_latency_ms / 1000, count=10**9, path_contains="/Messages")
    fake.start()
    try:
        port = free_port()
        overrides = {
            **twilio_settings(fake.base_url, ACCOUNT_SID),
            "NIGHTDESK_RUN_DISPATCHER": "false" if options.worker else "true",
            "NIGHTDESK_FLOWS_DIR": str(flows_dir),
        }
        print(f"{backend}: migrating and syncing {len(slots)} bench clients", flush=True)
        prepare_database(url, port, workdir, overrides)
        with (
            nightdesk_server(url, port, workdir, overrides) as server,
            worker_process(url, port, workdir, overrides) if options.worker else nullcontext() as w,
        ):
            return _measure(
                runner, backend, server, w, port, fake, arrivals, slots, profile, options
            )
    finally:
        fake.stop()


@contextmanager
def worker_process(
    url: str, port: int, workdir: Path, overrides: Mapping[str, str]
) -> Iterator[Server]:
    """`nightdesk worker`: the dispatcher in a process of its own, beside `serve`."""
    env = nightdesk_env(url, port, {**overrides, "NIGHTDESK_RUN_DISPATCHER": "true"})
    log = workdir / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*nightdesk_command(), "worker"], cwd=workdir, env=env, stdout=out, stderr=out
        )
    worker = Server("worker", process, log)
    try:
        time.sleep(2)  # imports and a first look at the database; the warm-up calls follow
        if process.poll() is not None:
            raise SystemExit(f"bench: nightdesk worker exited:\n{worker.log_tail()}")
        yield worker
    finally:
        stop_process(process, signal.SIGTERM, timeout=15)


def _measure(
    runner: asyncio.Runner,
    backend: str,
    server: Server,
    worker: Server | None,
    port: int,
    fake: FakeTwilio,
    arrivals: list[tuple[float, str]],
    slots: list[Slot],
    profile: Profile,
    options: Options,
) -> Figures:
    incoming, pressed = sign_calls(port, slots)
    by_first = {slot.first: slot for slot in slots}
    by_second = {slot.second: slot for slot in slots if slot.phase.startswith("late:")}
    # At each phase's start (and "<phase>:done", its last first-step SMS): wall time, server
    # CPU, machine CPU, this process's CPU, worker CPU
    marks: dict[str, Mark] = {}
    metrics_at_fast: list[dict[str, Any] | None] = []  # the histogram as the 100/s phase starts

    def mark(phase: str) -> None:
        if phase in marks:
            return
        marks[phase] = (
            time.time(), server.cpu_seconds(), machine_cpu_seconds(), time.process_time(),
            worker.cpu_seconds() if worker else 0.0, stolen_cpu_seconds(),
        )  # fmt: skip
        if phase == "fast" and profile.lateness_messages:
            threading.Thread(target=lambda: metrics_at_fast.append(metrics_or_none(port))).start()

    # Each timed phase is done when its last first-step SMS reaches the fake (on its thread).
    waiting = {p: {s.first for s in slots if s.phase == p} for p in ("fast", "loaded")}

    def arrived(record: Any) -> None:
        arrivals.append((time.time(), record.to))
        for phase, numbers in waiting.items():
            if record.to in numbers:
                numbers.discard(record.to)
                if not numbers:
                    mark(f"{phase}:done")

    fake.on_message = arrived

    print(f"{backend}: {len(slots)} calls come in and wait at the menu", flush=True)
    problems = runner.run(answer_calls(port, incoming))
    if problems:
        raise SystemExit(f"bench: calls were not answered with the menu: {problems[:3]}")
    lateness_note = ""
    if profile.lateness_messages:
        lateness_note = (
            f", after {2 * profile.lateness_messages} messages whose second steps fall due "
            f"during those phases (~{ESCALATION_WAIT_S + profile.fast_s + 10:.0f} s)"
        )
    print(
        f"{backend}: callers press 1 at {profile.slow_rate:g}/s for {profile.slow_s:g} s, then "
        f"{profile.fast_rate:g}/s for {profile.fast_s:g} s{lateness_note}",
        flush=True,
    )
    background = None
    if profile.loaded_s:
        loaded_at = min(s.at for s in slots if s.phase == "loaded")
        background = Background(
            book=CallBook("127.0.0.1", port, BENCH_TOKEN, options.background_callers * 5),
            callers=options.background_callers,
            at=loaded_at - BACKGROUND_LEAD_S,
            longest_s=BACKGROUND_LEAD_S + profile.loaded_s + profile.drain_s,
        )
        print(
            f"{backend}: then {profile.fast_rate:g}/s for {profile.loaded_s:g} s again, with "
            f"{background.callers} callers making whole calls on the same server",
            flush=True,
        )
    answers, calls = runner.run(
        timed_part(port, slots, pressed, mark, background, arrivals, profile.drain_s)
    )

    def first_sms_seen() -> bool:
        seen = {to for _, to in arrivals}
        return all(s.first in seen for s in slots if not answers[s.index].error)

    wait_until(first_sms_seen, profile.drain_s)
    mark("drained")
    if by_second:
        last_due = ESCALATION_WAIT_S + max(
            answers[s.index].answered for s in by_second.values() if not answers[s.index].error
        )
        wait_until(
            lambda: {to for _, to in arrivals} >= set(by_second),
            max(0.0, last_due - time.time()) + 15,
        )
    metrics = metrics_or_none(port, attempts=3)  # a backlog may keep it from answering at once
    if metrics is None:
        print(f"{backend}: /metrics did not answer at the end: its figures are unknown", flush=True)
    try:
        fake.settle(timeout=60)  # the last status callbacks reach the server before it stops
    except TimeoutError:  # a server far behind: its figures stand, its backlog is said
        print(f"{backend}: the fake's status callbacks were still queued 60 s on", flush=True)
    if server.process.poll() is not None:
        raise SystemExit(f"bench: {backend} server died:\n{server.log_tail()}")

    first_arrival: dict[str, float] = {}
    second_arrival: dict[str, float] = {}
    for at, to in sorted(arrivals):
        if to in by_first:
            first_arrival.setdefault(to, at)
        elif to in by_second:
            second_arrival.setdefault(to, at)
    phases = [
        phase_figures(name, rate, slots, answers, first_arrival)
        for name, rate in (
            ("warm-up", WARMUP_RATE),
            ("slow", profile.slow_rate),
            ("fast", profile.fast_rate),
            ("loaded", profile.fast_rate),
        )
        if name != "loaded" or profile.loaded_s
    ]
    lateness = []
    if profile.lateness_messages:
        before = metrics_at_fast[0] if metrics_at_fast else None
        if before is None:  # not read as the phase began: the server's figures are unknown
            print(f"{backend}: /metrics did not answer as the 100/s phase began", flush=True)
        lateness = [
            lateness_figures(
                "slow", profile.slow_rate, slots, answers, second_arrival,
                before or empty_metrics(),
            ),
            lateness_figures(
                "fast", profile.fast_rate, slots, answers, second_arrival,
                subtract(metrics, before) if before and metrics else empty_metrics(),
            ),
        ]  # fmt: skip
    slow, fast = marks["slow"], marks["fast"]
    modules = (metrics or empty_metrics())["modules"]
    # A phase whose last SMS never came (an error) ends when the next begins, or at the end.
    fast_end = marks.get("fast:done") or marks.get("background") or marks["drained"]
    cpu = [cpu_figures("fast", fast, fast_end)]
    if profile.loaded_s:
        cpu.append(
            cpu_figures("loaded", marks["loaded"], marks.get("loaded:done", marks["drained"]))
        )
    sms_in_slow = sum(1 for at, _ in arrivals if slow[0] <= at < fast[0])
    errors = [a.error for a in answers if a.error]
    if calls is not None:
        errors += calls[0].examples
    return Figures(
        backend=backend,
        dispatcher="worker" if worker else "in-process",
        phases=phases,
        lateness=lateness,
        cpu=cpu,
        cpu_ms_per_sms_slow=1000 * (fast[1] + fast[4] - slow[1] - slow[4]) / max(1, sms_in_slow),
        background=background_figures(background, *calls) if background and calls else None,
        module_runs={k: v[0] for k, v in modules.items()},
        module_seconds={k: v[1] for k, v in modules.items()},
        sms_total=len(arrivals),
        peak_rss_mb=server.peak_rss_mb(),
        error_examples=errors[:5],
        timeline=[
            [s.phase, a.sent, a.answered, first_arrival.get(s.first), second_arrival.get(s.second)]
            for s, a in zip(slots, answers, strict=True)
        ],
    )


# When, then CPU seconds so far: the server's, the machine's, this process's, the worker's, and
# the hypervisor's steal.
Mark = tuple[float, float, float, float, float, float]


def cpu_figures(phase: str, start: Mark, end: Mark) -> Cpu:
    wall = max(1e-9, end[0] - start[0])
    server, machine, bench, worker, stolen = (end[i] - start[i] for i in (1, 2, 3, 4, 5))
    return Cpu(
        phase=phase,
        server_pct=100 * server / wall,
        worker_pct=100 * worker / wall,
        bench_pct=100 * bench / wall,
        others_pct=100 * max(0.0, machine - server - worker - bench) / wall,
        stolen_pct=100 * stolen / wall,
    )


def background_figures(background: Background, calls: Tally, seconds: float) -> BackgroundFigures:
    return BackgroundFigures(
        callers=background.callers,
        every_s=BACKGROUND_EVERY_S,
        seconds=seconds,
        requests=len(calls.latencies),
        calls_finished=calls.calls_finished,
        p50_ms=percentile(calls.latencies, 0.50) * 1000,
        p99_ms=percentile(calls.latencies, 0.99) * 1000,
        max_ms=max(calls.latencies, default=NAN) * 1000,
        errors=sum(calls.errors.values()),
        latest_send_ms=max(calls.late_sends, default=0.0) * 1000,
    )


# --- the callers -------------------------------------------------------------------------------


@dataclass
class Background:
    """Whole calls (bench.load, the acme-plumbing flow) on the same server, each caller taking a
    step a second, from `at` (seconds into the timed part) until the loaded phase's last
    first-step SMS has arrived (at most `longest_s`)."""

    book: CallBook
    callers: int
    at: float
    longest_s: float


async def timed_part(
    port: int,
    slots: list[Slot],
    requests: list[bytes],
    mark: Callable[[str], None],
    background: Background | None,
    arrivals: list[tuple[float, str]],
    drain_s: float,
) -> tuple[list[Answer], tuple[Tally, float] | None]:
    """The keypresses (`drive`), and the background calls during the loaded phase, which stop
    once the loaded phase's SMS are all out (or `drain_s` after its last keypress)."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    if background is None:
        return await drive(port, slots, requests, mark, start), None
    stop = asyncio.Event()

    async def calls() -> tuple[Tally, float]:
        await asyncio.sleep(max(0.0, start + background.at - loop.time()))
        mark("background")
        began = time.perf_counter()
        tally = await busy_night(
            background.book, background.callers, BACKGROUND_EVERY_S,
            background.longest_s - BACKGROUND_LEAD_S, True, stop, ramp=BACKGROUND_LEAD_S,
        )  # fmt: skip
        return tally, time.perf_counter() - began

    task = asyncio.create_task(calls())
    try:
        answers = await drive(port, slots, requests, mark, start)
        loaded = {s.first for s in slots if s.phase == "loaded" and not answers[s.index].error}
        deadline = loop.time() + drain_s
        # The fake appends to `arrivals` on its own thread: look every 50 ms.
        while loop.time() < deadline and not loaded <= {to for _, to in arrivals}:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        stop.set()
    return answers, await task


def sign_calls(port: int, slots: list[Slot]) -> tuple[list[bytes], list[bytes]]:
    """Each slot's call, signed exactly as Twilio signs it: the call coming in (answered with the
    menu, before the timed part) and the caller pressing 1, which saves the message."""
    validator = RequestValidator(BENCH_TOKEN)
    run = f"{time.time_ns():x}"[-8:]

    def signed(path: str, params: dict[str, str]) -> bytes:
        body = urlencode(params).encode()
        signature = validator.compute_signature(f"http://127.0.0.1:{port}{path}", params)
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
            "\r\n"
        )
        return head.encode() + body

    incoming, pressed = [], []
    for slot in slots:
        params = {
            "AccountSid": ACCOUNT_SID, "CallSid": f"CA{run}{slot.index:024x}", "From": CALLER,
            "To": slot.number, "Caller": CALLER, "Called": slot.number, "CallStatus": "ringing",
            "Direction": "inbound", "ApiVersion": "2010-04-01",
        }  # fmt: skip
        incoming.append(signed("/twilio/voice", params))
        params = {**params, "CallStatus": "in-progress", "Digits": "1"}
        pressed.append(signed("/twilio/voice/step?turn=1", params))
    return incoming, pressed


async def answer_calls(port: int, incoming: list[bytes]) -> list[str]:
    """Every call comes in and hears the menu (a few at a time); returns what went wrong."""
    problems: list[str] = []
    queue = list(reversed(incoming))

    async def caller() -> None:
        connection = await Connection.open("127.0.0.1", port)
        try:
            while queue:
                status, body = await connection.exchange(queue.pop())
                if status != 200 or b"turn=1" not in body:
                    problems.append(f"HTTP {status}: {body[:200].decode(errors='replace')}")
        finally:
            connection.close()

    await asyncio.gather(*(caller() for _ in range(4)))
    return problems


async def drive(
    port: int,
    slots: list[Slot],
    requests: list[bytes],
    mark: Callable[[str], None],
    start: float,
) -> list[Answer]:
    """Open loop: each caller presses 1 at their slot's time after `start` (loop time), however
    slow the answers are.

    Keep-alive connections are reused while fresh; uvicorn closes idle ones after 5 s."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[Connection, float]] = []
    answers = [Answer() for _ in slots]

    async def connection() -> Connection:
        while idle:
            fresh, used = idle.pop()
            if loop.time() - used < IDLE_CONNECTION_S:
                return fresh
            fresh.close()
        return await Connection.open("127.0.0.1", port)

    async def press(slot: Slot) -> None:
        answer = answers[slot.index]
        line = await connection()
        answer.sent = time.time()
        try:
            status, body = await line.exchange(requests[slot.index])
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            line.close()
            answer.error = f"{type(exc).__name__}: {exc}"
            return
        answer.answered = time.time()
        idle.append((line, loop.time()))
        if status != 200 or b"<Hangup" not in body:
            answer.error = f"HTTP {status}: {body[:200].decode(errors='replace')}"

    tasks = []
    for slot in slots:
        due = start + slot.at
        await asyncio.sleep(max(0.0, due - loop.time()))
        mark(slot.phase)
        answers[slot.index].late_send = max(0.0, loop.time() - due)
        tasks.append(asyncio.create_task(press(slot)))
    await asyncio.gather(*tasks)
    for line, _ in idle:
        line.close()
    return answers


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- figures -----------------------------------------------------------------------------------


def read_metrics(port: int) -> dict[str, Any]:
    """The lateness histogram and the dispatcher modules' run counts and seconds."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = empty_metrics()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{LATENESS_METRIC}_bucket":
                found["buckets"][sample.labels["le"]] = sample.value
            elif sample.name == f"{LATENESS_METRIC}_count":
                found["count"] = sample.value
            elif sample.name == f"{LATENESS_METRIC}_sum":
                found["sum"] = sample.value
            elif sample.name in (f"{MODULE_METRIC}_count", f"{MODULE_METRIC}_sum"):
                pair = found["modules"].setdefault(sample.labels["module"], [0.0, 0.0])
                pair[0 if sample.name.endswith("_count") else 1] = sample.value
    return found


def metrics_or_none(port: int, attempts: int = 1) -> dict[str, Any] | None:
    """`read_metrics`, or None when the server doesn't answer within its timeout `attempts`
    times (a backlog)."""
    for _ in range(attempts):
        try:
            return read_metrics(port)
        except OSError:  # a timeout, a refused or reset connection
            continue
    return None


def empty_metrics() -> dict[str, Any]:
    return {"buckets": {}, "count": 0.0, "sum": 0.0, "modules": {}}


def subtract(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The lateness histogram's observations between two readings."""
    return {
        "buckets": {le: n - before["buckets"].get(le, 0.0) for le, n in after["buckets"].items()},
        "count": after["count"] - before["count"],
        "sum": after["sum"] - before["sum"],
        "modules": after["modules"],
    }


def bucket_quantile(buckets: dict[str, float], q: float) -> float:
    """The upper bound of the first cumulative bucket holding the q-th quantile."""
    ordered = sorted((float(le), n) for le, n in buckets.items())
    total = ordered[-1][1] if ordered else 0
    if not total:
        return NAN
    return next(bound for bound, cumulative in ordered if cumulative >= q * total)


def phase_figures(
    name: str, rate: float, slots: list[Slot], answers: list[Answer], arrivals: dict[str, float]
) -> PhaseFigures:
    ours = [(s, answers[s.index]) for s in slots if s.phase == name]
    ok = [(s, a) for s, a in ours if not a.error]
    # In the order the messages came in, so the first and last tenths mean something.
    latencies = [arrivals[s.first] - a.answered for s, a in ok if s.first in arrivals]
    tenth = max(1, len(latencies) // 10)
    seen = sorted(arrivals[s.first] for s, _ in ok if s.first in arrivals)
    span = seen[-1] - seen[0] if len(seen) > 1 else 0.0
    webhook = [a.answered - a.sent for _, a in ok]
    return PhaseFigures(
        phase=name,
        rate=rate,
        messages=len(ours),
        sms_arrived=len(latencies),
        missing=len(ok) - len(latencies),
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=max(latencies, default=NAN) * 1000,
        first_tenth_p50_ms=percentile(latencies[:tenth], 0.5) * 1000,
        last_tenth_p50_ms=percentile(latencies[-tenth:], 0.5) * 1000,
        sms_per_s=(len(seen) - 1) / span if span > 0 else NAN,
        webhook_p50_ms=percentile(webhook, 0.50) * 1000,
        webhook_p99_ms=percentile(webhook, 0.99) * 1000,
        errors=len(ours) - len(ok),
        latest_send_ms=max((a.late_send for _, a in ours), default=0.0) * 1000,
    )


def lateness_figures(
    during: str,
    rate: float,
    slots: list[Slot],
    answers: list[Answer],
    arrivals: dict[str, float],
    metrics: dict[str, Any],
) -> LatenessFigures:
    """The save time is the keypress's answer, a few ms after the server's `now`: the fake's
    figure is that much too small, and includes the second step's own send."""
    ours = [(s, answers[s.index]) for s in slots if s.phase == f"late:{during}"]
    due = {s.second: a.answered + ESCALATION_WAIT_S for s, a in ours if not a.error}
    late = [arrivals[number] - at for number, at in due.items() if number in arrivals]
    return LatenessFigures(
        during=f"{rate:g}/s",
        messages=len(due),
        second_sms_arrived=len(late),
        metric_count=metrics["count"] if metrics["buckets"] else NAN,
        metric_sum_s=metrics["sum"] if metrics["buckets"] else NAN,
        metric_p50_s=bucket_quantile(metrics["buckets"], 0.50),
        metric_p99_s=bucket_quantile(metrics["buckets"], 0.99),
        metric_buckets=metrics["buckets"],
        fake_p50_s=percentile(late, 0.50),
        fake_p99_s=percentile(late, 0.99),
        fake_max_s=max(late, default=NAN),
    )


# --- the report --------------------------------------------------------------------------------


def report(results: list[Figures], profile: Profile) -> bool:
    """Print the table and the verdicts; True when every backend meets every target."""
    print()
    print("saved -> first SMS at the fake Twilio (ms); hook = the keypress webhook that saved it")
    print(
        f"{'backend':10} {'phase':>8} {'rate':>5} {'msgs':>5} {'p50':>7} {'p99':>7} {'max':>7} "
        f"{'1st10%':>7} {'last10%':>7} {'SMS/s':>6} {'miss':>4} {'err':>4} | "
        f"{'hook p50':>8} {'hook p99':>8}"
    )
    for r in results:
        for p in r.phases:
            print(
                f"{r.backend:10} {p.phase:>8} {p.rate:5g} {p.messages:5d} {p.p50_ms:7.1f} "
                f"{p.p99_ms:7.1f} {p.max_ms:7.1f} {p.first_tenth_p50_ms:7.1f} "
                f"{p.last_tenth_p50_ms:7.1f} {p.sms_per_s:6.0f} {p.missing:4d} {p.errors:4d} | "
                f"{p.webhook_p50_ms:8.1f} {p.webhook_p99_ms:8.1f}"
            )
    for r in results:
        if (b := r.background) is not None:
            print(
                f"loaded: {profile.fast_rate:g}/s again, while {b.callers} callers made whole "
                f"calls (a step every {b.every_s:g} s each) on the same server: {b.requests} steps"
                f" in {b.seconds:.1f} s, p50 {b.p50_ms:.1f} ms, p99 {b.p99_ms:.1f} ms, max "
                f"{b.max_ms:.1f} ms, {b.errors} errors ({r.backend})"
            )
    if profile.lateness_messages:
        print()
        print("escalation lateness (s): second steps (wait_minutes: 1) falling due during a phase")
        print(
            f"{'backend':10} {'during':>6} | {'fired':>5} {'metric p50':>10} {'p99':>5} "
            f"{'mean':>6} | {'SMS':>3} {'fake p50':>8} {'p99':>6} {'max':>6}"
        )
        for r in results:
            for lt in r.lateness:
                mean = lt.metric_sum_s / lt.metric_count if lt.metric_count else NAN
                print(
                    f"{r.backend:10} {lt.during:>6} | {lt.metric_count:5.0f} "
                    f"{lt.metric_p50_s:10.2f} {lt.metric_p99_s:5.2f} {mean:6.3f} | "
                    f"{lt.second_sms_arrived:3d} {lt.fake_p50_s:8.3f} {lt.fake_p99_s:6.3f} "
                    f"{lt.fake_max_s:6.3f}"
                )
        print("  metric: the server's histogram; p50/p99 are the upper bounds of the buckets")
        print("  (..0.5, 1, 2, 5..) holding them. fake: second-step SMS at the fake minus")
        print("  (saved + 60 s), so it includes the step's send as well as its firing.")
    print()
    for r in results:
        print(
            f"{r.backend} (dispatcher {r.dispatcher}): CPU from a phase's start to its last SMS"
            " (100% = one core): server, bench process (load, fake Twilio), everything else,"
            " the hypervisor's (steal: time it gave other machines)"
        )
        for c in r.cpu:
            worker = f" + worker {c.worker_pct:.0f}%" if r.dispatcher == "worker" else ""
            print(
                f"  {c.phase:>6}: server {c.server_pct:.0f}%{worker}, bench {c.bench_pct:.0f}%, "
                f"everything else {c.others_pct:.0f}%, hypervisor {c.stolen_pct:.0f}%"
            )
        print(
            f"  {r.cpu_ms_per_sms_slow:.1f} ms of server CPU per SMS during the "
            f"{profile.slow_rate:g}/s phase (keypress webhook, dispatch, two status callbacks); "
            f"RSS {r.peak_rss_mb:.0f} MB"
        )
        runs = ", ".join(
            f"{m} {r.module_runs[m]:.0f} runs / {r.module_seconds[m]:.2f} s"
            for m in sorted(r.module_runs)
        )
        if runs:
            print(f"  dispatcher modules (/metrics, whole run): {runs}")
    print()
    passed = True
    for r in results:
        # The target's phase: 100/s with the background calls running (the loaded phase), or
        # without them when --background-callers 0 left it out.
        fast = r.phases[-1]
        during = " with calls" if fast.phase == "loaded" else ""
        errors = sum(p.errors for p in r.phases) + (r.background.errors if r.background else 0)
        checks = [
            (f"p99 at {fast.rate:g}/s{during} <= {MAX_P99_MS_AT_100:g} ms",
             fast.p99_ms <= MAX_P99_MS_AT_100, f"{fast.p99_ms:.1f} ms"),
            ("every message's SMS sent, no webhook errors",
             all(p.missing == 0 for p in r.phases) and errors == 0,
             f"{sum(p.missing for p in r.phases)} missing, {errors} errors"),
        ]  # fmt: skip
        for lt in r.lateness:
            # With --worker the histogram lives in the worker, which serves no /metrics.
            worst = max((v for v in (lt.metric_p99_s, lt.fake_p99_s) if v == v), default=NAN)
            checks.append(
                (f"escalation p99 late <= {MAX_LATENESS_S:g} s at {lt.during}",
                 worst <= MAX_LATENESS_S and lt.second_sms_arrived == lt.messages,
                 f"metric {lt.metric_p99_s:.2f} s, fake {lt.fake_p99_s:.3f} s, "
                 f"{lt.second_sms_arrived}/{lt.messages} sent"),
            )  # fmt: skip
        for label, ok, value in checks:
            passed &= ok
            print(f"{'PASS' if ok else 'FAIL'}  {r.backend:10} {label:44} {value}")
        for example in r.error_examples[:3]:
            print(f"      e.g. {example!r}")
    return passed


def save(
    results: list[Figures], machine: dict[str, Any], profile: Profile, options: Options
) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    data = {
        "when": stamp,
        "machine": machine,
        "profile": asdict(profile),
        "options": asdict(options),
        "targets": {"max_p99_ms_at_100": MAX_P99_MS_AT_100, "max_lateness_s": MAX_LATENESS_S},
        "results": [asdict(r) for r in results],
    }
    write_results("dispatch", stamp, data)


if __name__ == "__main__":
    sys.exit(main())
