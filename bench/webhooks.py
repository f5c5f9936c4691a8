"""Benchmark of the voice webhook path: `uv run python -m bench.webhooks [--quick] [--backend ...]`.

Measures, in one run and with one load generator (bench/load.py), two bare FastAPI apps (the
ceilings, bench/ceiling.py: `Form()` parameters, the one ratios are taken against, and
`request.form()`) and `nightdesk serve` as it starts by default (dispatcher inside, sending its SMS
to a fake Twilio in this process; INFO logs) on SQLite and on PostgreSQL:
  1. busy night: 32 callers, each taking a step of a whole call a second (open loop) -> latency;
  2. saturation, two workloads: whole calls (7 requests each), and first steps of new calls
     (POST /twilio/voice with a fresh CallSid, the costliest step): C callers with no think time
     -> requests/s, and the ratio to the Form() ceiling's, measured just before and just after;
  3. the server's peak RSS (VmHWM) at the end.
With --secondary (always in the full run) each backend is also measured with the dispatcher off
and WARNING logs, reported as a secondary row. Prints the tables, PASS/FAIL against the targets
(exit 1 on a miss) and writes bench/results/webhooks-<time>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from app.telephony.sandbox.fake_twilio import FakeTwilio
from bench.load import (
    ACCOUNT_SID,
    WHOLE_CALL_STEPS,
    Book,
    CallBook,
    Tally,
    busy_night,
    percentile,
    saturate,
)
from bench.servers import (
    BENCH_TOKEN,
    LEAN,
    Server,
    ceiling_server,
    database,
    describe_machine,
    free_port,
    machine_cpu_seconds,
    nightdesk_server,
    prepare_database,
    stolen_cpu_seconds,
    twilio_settings,
    write_results,
)

# The targets, for one uvicorn worker as `nightdesk serve` starts by default.
MIN_CEILING_RATIO = {"sqlite": 0.6, "postgresql": 0.3}  # of the Form() ceiling, both workloads
MAX_BUSY_P99_MS = 15.0
MAX_RSS_MB = 150.0
BUSY_CALLERS = 32
BUSY_EVERY_S = 1.0
# The busy night's callers start at random over a whole call's steps (not counted), so that
# they are at different steps of their calls, as independent callers are (bench.load).
BUSY_RAMP_S = WHOLE_CALL_STEPS * BUSY_EVERY_S
WORKLOADS = {"calls": "whole calls (7 requests)", "first": "first steps of new calls"}
SHORT = {"calls": "whole calls", "first": "first steps"}
DEFAULTS = "defaults"  # `nightdesk serve` as it starts: dispatcher inside, INFO logs
SECONDARY = "dispatcher off, WARNING"  # LEAN: the webhook path alone
CEILING_FORM, CEILING_REQUEST_FORM = "ceiling: Form()", "ceiling: request.form()"
QUIET_CPU_PCT = 10.0  # a server under this much CPU for half a second has caught up


@dataclass(frozen=True)
class Profile:
    warmup_s: float  # whole calls at saturation before anything is measured (not counted)
    busy_s: float
    saturation_warmup_s: float
    saturation_s: float
    signed_calls: int  # whole calls signed before the timed windows
    signed_first_steps: int  # first steps of new calls signed before the timed windows
    catch_up_s: float  # the longest wait for a server to go quiet after a saturation


FULL = Profile(
    warmup_s=2, busy_s=20, saturation_warmup_s=2, saturation_s=10, signed_calls=9000,
    signed_first_steps=36000, catch_up_s=60,
)  # fmt: skip
QUICK = Profile(
    warmup_s=0.5, busy_s=3, saturation_warmup_s=0.5, saturation_s=2.5, signed_calls=1800,
    signed_first_steps=8000, catch_up_s=20,
)  # fmt: skip


@dataclass
class Saturation:
    """One workload's saturation on one server."""

    workload: str  # a key of WORKLOADS
    rps: float
    ratio: float  # over the Form() ceiling's requests/s (see ceiling_rps)
    ceiling_rps: list[float]  # the Form() ceiling's: just before and after (a request.form()
    # ceiling: just before; the Form() ceiling itself: its own)
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_pct: float  # 100 = one core
    bench_cpu_pct: float  # this process: load generator, and the fake Twilio's threads
    others_cpu_pct: float  # everything else on the machine (PostgreSQL too)
    stolen_cpu_pct: float  # taken by the hypervisor for other machines ("steal")
    catch_up_s: float  # after the window, until the server went quiet (dispatch backlog)
    caught_up: bool  # False: still busy after profile.catch_up_s


@dataclass
class BusyNight:
    p50_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    latest_send_ms: float  # how far behind schedule the open loop ever was


@dataclass
class Figures:
    """One server's results."""

    server: str  # the row's label
    backend: str  # "ceiling", "sqlite" or "postgresql"
    config: str  # the ceiling's form parsing, DEFAULTS or SECONDARY
    saturation: list[Saturation]
    busy: BusyNight | None  # not measured for the request.form() ceiling
    peak_rss_mb: float
    sms_sent: int  # SMS the dispatcher sent to the fake Twilio while this server ran
    signed_on_the_spot: int = 0  # requests signed during the timed windows (the books ran out)
    calls_finished: int = 0
    office_open_calls: int = 0
    office_closed_calls: int = 0
    error_examples: list[str] = field(default_factory=list)

    @property
    def targeted(self) -> bool:
        return self.config == DEFAULTS


Run = Callable[[Coroutine[Any, Any, Tally]], Tally]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="a ~1 minute smoke run (SQLite only, short windows)"
    )
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default=None,
        help="database(s) to measure (default: both; sqlite with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=32, help="saturation callers (default 32)"
    )
    parser.add_argument(
        "--secondary", action=argparse.BooleanOptionalAction, default=None,
        help=f"also measure each backend with {SECONDARY} logs, as a secondary row "
        "(default: in the full run, not with --quick)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    backend = args.backend or ("sqlite" if args.quick else "both")
    backends = ["sqlite", "postgresql"] if backend == "both" else [backend]
    secondary = not args.quick if args.secondary is None else args.secondary
    configs = [DEFAULTS, SECONDARY] if secondary else [DEFAULTS]
    machine = describe_machine()
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}; code: {machine['commit']}"
    )
    started = time.monotonic()
    port = free_port()
    books = {
        "calls": CallBook("127.0.0.1", port, BENCH_TOKEN, profile.signed_calls),
        "first": CallBook("127.0.0.1", port, BENCH_TOKEN, profile.signed_first_steps, whole=False),
    }
    print(
        f"signed {profile.signed_calls} whole calls and {profile.signed_first_steps} first steps "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    c = args.concurrency
    results: list[Figures] = []
    with ExitStack() as stack:
        runner = stack.enter_context(asyncio.Runner(loop_factory=uvloop.new_event_loop))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nightdesk-bench-")))
        fake = stack.enter_context(counting_fake_twilio())
        # The ceilings stay up on ports of their own, to be measured again around each server.
        form_port, request_form_port = free_port(), free_port()
        ceiling = Target(
            stack.enter_context(ceiling_server(form_port, workdir, "bench.ceiling:app")),
            {w: book.again(form_port) for w, book in books.items()},
        )
        request_form = Target(
            stack.enter_context(
                ceiling_server(
                    request_form_port, workdir, "bench.ceiling:request_form_app",
                    "ceiling-request-form",
                )
            ),
            {w: book.again(request_form_port) for w, book in books.items()},
        )  # fmt: skip
        results += measure_ceilings(runner.run, ceiling, request_form, profile, c)
        for backend in backends:
            for config in configs:
                name = backend if config == DEFAULTS else f"{backend} ({config})"
                overrides = twilio_settings(fake.base_url, ACCOUNT_SID)
                if config == SECONDARY:
                    overrides.update(LEAN)
                label = "nightdesk" if config == DEFAULTS else "nightdesk-lean"
                with database(backend, workdir, f"{label}-{backend}") as (url, version):
                    machine[f"{backend}_version"] = version
                    for book in books.values():
                        book.restart()
                    prepare_database(url, port, workdir, overrides)
                    fake.reset()
                    with nightdesk_server(url, port, workdir, overrides, label) as server:
                        nightdesk = Target(server, dict(books))
                        results.append(
                            measure(runner.run, nightdesk, name, backend, config, ceiling, fake,
                                    profile, c)
                        )  # fmt: skip
    passed = report(results, c)
    machine["seconds"] = round(time.monotonic() - started, 1)
    save(results, machine, profile, c, configs)
    return 0 if passed else 1


@dataclass
class Target:
    """A server under test, and the signed requests for it, by workload."""

    server: Server
    books: dict[str, Book]


class CountingFake(FakeTwilio):
    """The fake Twilio, counting the SMS it is asked to send (its records are kept as well)."""

    sms = 0

    def count(self, _record: object) -> None:
        self.sms += 1

    def reset(self) -> None:
        super().reset()
        self.sms = 0


@contextmanager
def counting_fake_twilio() -> Iterator[CountingFake]:
    """The local fake of Twilio's REST API (app/telephony/sandbox/fake_twilio.py), on loopback
    in this process, as bench.dispatch runs it; it sends its signed status callbacks (sent,
    delivered) back to the server, as Twilio does."""
    fake = CountingFake(ACCOUNT_SID, BENCH_TOKEN)
    fake.on_message = fake.count
    with fake:
        yield fake


def measure_ceilings(
    run: Run, ceiling: Target, request_form: Target, profile: Profile, concurrency: int
) -> list[Figures]:
    """Both ceilings: warm-up, the Form() ceiling's busy night, then each workload's saturation,
    the request.form() ceiling's just after the Form() one's (its ratio is taken against it)."""
    print("ceilings: warming up", flush=True)
    for target in (ceiling, request_form):
        run(saturate(target.books["calls"], concurrency, 0, profile.warmup_s, False))
    busy = run(busy_night_of(CEILING_FORM, ceiling.books["calls"], profile, False))
    form_rows: list[Saturation] = []
    request_form_rows: list[Saturation] = []
    for workload in WORKLOADS:
        print(f"{CEILING_FORM}: saturation, {WORKLOADS[workload]}", flush=True)
        form, _ = saturation(run, ceiling, workload, profile, concurrency)
        form.ceiling_rps, form.ratio = [form.rps], 1.0
        form_rows.append(form)
        print(f"{CEILING_REQUEST_FORM}: saturation, {WORKLOADS[workload]}", flush=True)
        cheaper, _ = saturation(run, request_form, workload, profile, concurrency)
        cheaper.ceiling_rps, cheaper.ratio = [form.rps], cheaper.rps / form.rps
        request_form_rows.append(cheaper)
    return [
        Figures(CEILING_FORM, "ceiling", "Form()", form_rows, busy_figures(busy),
                ceiling.server.peak_rss_mb(), 0),
        Figures(CEILING_REQUEST_FORM, "ceiling", "request.form()", request_form_rows, None,
                request_form.server.peak_rss_mb(), 0),
    ]  # fmt: skip


def measure(
    run: Run,
    nightdesk: Target,
    name: str,
    backend: str,
    config: str,
    ceiling: Target,
    fake: CountingFake,
    profile: Profile,
    concurrency: int,
) -> Figures:
    """Warm up, the busy night, then each workload's saturation between two of the Form()
    ceiling's, then the server's peak memory.

    The ceiling is measured again just before and just after each saturation, and the ratio
    taken against the mean of the two: this machine's speed drifts by a fifth over a few minutes
    (shared cores), which a ceiling measured minutes earlier would put into the ratio. After
    each stretch of load the server is given time to go quiet (its dispatcher sends the SMS
    queued for the messages the calls saved), so that no backlog runs into the next measurement.
    """
    server, calls = nightdesk.server, nightdesk.books["calls"]
    print(f"{name}: warming up", flush=True)
    warm = run(saturate(calls, concurrency, 0, profile.warmup_s, True))
    wait_quiet(server, fake, profile.catch_up_s)
    busy = run(busy_night_of(name, calls, profile, True))
    wait_quiet(server, fake, profile.catch_up_s)
    rows: list[Saturation] = []
    tallies = [warm, busy]
    for workload in WORKLOADS:
        around: list[float] = []
        what = WORKLOADS[workload]
        print(f"{CEILING_FORM}: saturation, {what}, before {name}", flush=True)
        around.append(saturation(run, ceiling, workload, profile, concurrency)[0].rps)
        print(f"{name}: saturation, {what}", flush=True)
        row, tally = saturation(run, nightdesk, workload, profile, concurrency, fake)
        print(f"{CEILING_FORM}: saturation, {what}, after {name}", flush=True)
        around.append(saturation(run, ceiling, workload, profile, concurrency)[0].rps)
        row.ceiling_rps, row.ratio = around, row.rps / (sum(around) / len(around))
        rows.append(row)
        tallies.append(tally)
    if server.process.poll() is not None:
        raise SystemExit(f"bench: {name} died:\n{server.log_tail()}")
    return Figures(
        server=name,
        backend=backend,
        config=config,
        saturation=rows,
        busy=busy_figures(busy),
        peak_rss_mb=server.peak_rss_mb(),
        sms_sent=fake.sms,
        signed_on_the_spot=sum(book.signed_on_the_spot for book in nightdesk.books.values()),
        calls_finished=warm.calls_finished + busy.calls_finished + tallies[2].calls_finished,
        office_open_calls=sum(t.open_branch for t in tallies),
        office_closed_calls=sum(t.closed_branch for t in tallies),
        error_examples=[e for t in tallies for e in t.examples],
    )


def busy_night_of(
    name: str, book: Book, profile: Profile, check_bodies: bool
) -> Coroutine[Any, Any, Tally]:
    """The busy night against one server (see BUSY_RAMP_S), said as it starts."""
    print(
        f"{name}: busy night, {BUSY_CALLERS} callers starting over {BUSY_RAMP_S:g} s, "
        f"then {profile.busy_s:g} s",
        flush=True,
    )
    return busy_night(
        book, BUSY_CALLERS, BUSY_EVERY_S, profile.busy_s, check_bodies, ramp=BUSY_RAMP_S
    )


def saturation(
    run: Run,
    target: Target,
    workload: str,
    profile: Profile,
    concurrency: int,
    fake: CountingFake | None = None,
) -> tuple[Saturation, Tally]:
    """One saturation window and the server's CPU in it. With `fake` (a Nightdesk server: its
    answers are checked), how long the server then took to go quiet. The caller fills in the
    ratio."""
    server = target.server
    cpu, own_cpu, machine_cpu = server.cpu_seconds(), time.process_time(), machine_cpu_seconds()
    stolen = stolen_cpu_seconds()
    wall = time.perf_counter()
    tally = run(
        saturate(
            target.books[workload], concurrency, profile.saturation_warmup_s,
            profile.saturation_s, fake is not None,
        )
    )  # fmt: skip
    wall = time.perf_counter() - wall
    cpu, own_cpu = server.cpu_seconds() - cpu, time.process_time() - own_cpu
    machine_cpu = machine_cpu_seconds() - machine_cpu
    stolen = stolen_cpu_seconds() - stolen
    catch_up, caught_up = wait_quiet(server, fake, profile.catch_up_s) if fake else (0.0, True)
    figures = Saturation(
        workload=workload,
        rps=len(tally.latencies) / profile.saturation_s,
        ratio=float("nan"),
        ceiling_rps=[],
        p50_ms=percentile(tally.latencies, 0.50) * 1000,
        p99_ms=percentile(tally.latencies, 0.99) * 1000,
        errors=sum(tally.errors.values()),
        server_cpu_pct=100 * cpu / wall,
        bench_cpu_pct=100 * own_cpu / wall,
        others_cpu_pct=100 * max(0.0, machine_cpu - cpu - own_cpu) / wall,
        stolen_cpu_pct=100 * stolen / wall,
        catch_up_s=catch_up,
        caught_up=caught_up,
    )
    return figures, tally


def busy_figures(busy: Tally) -> BusyNight:
    return BusyNight(
        p50_ms=percentile(busy.latencies, 0.50) * 1000,
        p99_ms=percentile(busy.latencies, 0.99) * 1000,
        max_ms=max(busy.latencies, default=float("nan")) * 1000,
        requests=len(busy.latencies),
        errors=sum(busy.errors.values()),
        latest_send_ms=max(busy.late_sends, default=0.0) * 1000,
    )


def wait_quiet(server: Server, fake: FakeTwilio, timeout: float) -> tuple[float, bool]:
    """Wait until the server has used under QUIET_CPU_PCT of a core for half a second and the
    fake Twilio has sent every status callback due: (seconds waited, whether it got there)."""
    started = time.monotonic()
    quiet_since: float | None = None
    cpu, at = server.cpu_seconds(), started
    while time.monotonic() - started < timeout:
        time.sleep(0.1)
        now, used = time.monotonic(), server.cpu_seconds()
        busy = 100 * (used - cpu) / (now - at) >= QUIET_CPU_PCT
        cpu, at = used, now
        if busy or not fake.callback_sender.wait_idle(0):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 0.5:
            return quiet_since - started, True
    return time.monotonic() - started, False


# --- the report --------------------------------------------------------------------------------


def report(results: list[Figures], concurrency: int) -> bool:
    """Print the tables and the verdicts; True when every targeted row meets every target."""
    width = max(len("server"), *(len(r.server) for r in results))
    print()
    print(
        f"saturation: {concurrency} callers, no think time; x ceil = req/s over the Form() "
        "ceiling's, measured just before and just after"
    )
    sub = f"{'req/s':>6} {'x ceil':>6} {'p50 ms':>7} {'p99 ms':>7} {'err':>4}"
    print(f"{'':{width}} | " + " | ".join(f"{WORKLOADS[w]:{len(sub)}}" for w in WORKLOADS))
    print(f"{'server':{width}} | {sub} | {sub}")
    for r in results:
        cells = " | ".join(
            f"{s.rps:6.0f} {s.ratio:6.2f} {s.p50_ms:7.2f} {s.p99_ms:7.2f} {s.errors:4d}"
            for s in r.saturation
        )
        print(f"{r.server:{width}} | {cells}")
    print()
    busy_head = f"busy night, {BUSY_CALLERS} callers x 1 step/s"
    print(f"{'':{width}} | {busy_head:29} | {'server':24} | CPU % at saturation")
    print(
        f"{'server':{width}} | {'p50 ms':>6} {'p99 ms':>6} {'max ms':>6} {'err':>4} | "
        f"{'RSS MB':>6} {'catch-up s':>10} {'SMS':>6} | {'calls':>6} {'first':>6} {'bench':>6}"
    )
    for r in results:
        b = r.busy
        busy = f"{b.p50_ms:6.2f} {b.p99_ms:6.2f} {b.max_ms:6.2f} {b.errors:4d}" if b else " " * 29
        calls, first = r.saturation
        catch_up, sms = f"{calls.catch_up_s:.1f}", f"{r.sms_sent}"
        if not calls.caught_up:
            catch_up = f">{catch_up}"
        if r.backend == "ceiling":
            catch_up = sms = ""
        print(
            f"{r.server:{width}} | {busy} | {r.peak_rss_mb:6.1f} {catch_up:>10} {sms:>6} | "
            f"{calls.server_cpu_pct:6.0f} {first.server_cpu_pct:6.0f} {calls.bench_cpu_pct:6.0f}"
        )
    print(
        "RSS: peak (VmHWM). catch-up: after the whole calls' saturation, until the server went"
        " quiet (its dispatcher sending what the calls queued); SMS: its dispatcher's, all run."
    )
    print(
        "CPU: 100 = one core; calls, first: the server's in each workload's saturation; bench:"
        " this process (load generator, fake Twilio) in the whole calls'."
    )
    print("the Form() ceiling's req/s just before and just after each server's saturation:")
    for r in results:
        if r.backend != "ceiling":
            around = "; ".join(
                f"{s.workload} " + " and ".join(f"{rps:.0f}" for rps in s.ceiling_rps)
                for s in r.saturation
            )
            others = "/".join(f"{s.others_cpu_pct:.0f}%" for s in r.saturation)
            stolen = "/".join(f"{s.stolen_cpu_pct:.0f}%" for s in r.saturation)
            print(
                f"  {r.server}: {around}; everything else's CPU meanwhile {others}, "
                f"the hypervisor's {stolen}"
            )
    print(
        "  (everything else: PostgreSQL's backends, and any other work on the machine: much"
        " more than PostgreSQL's share means a noisy run; the hypervisor's: time it gave other"
        ' machines while this one wanted it, "steal")'
    )
    print()
    passed = True
    for r in results:
        if not r.targeted:
            continue
        minimum = MIN_CEILING_RATIO[r.backend]
        checks = [
            (f"{SHORT[s.workload]} at saturation >= {minimum:g} x ceiling",
             s.ratio >= minimum, f"{s.ratio:.2f}")
            for s in r.saturation
        ]  # fmt: skip
        assert r.busy is not None
        saturation_errors = sum(s.errors for s in r.saturation)
        checks += [
            (f"busy night p99 <= {MAX_BUSY_P99_MS:g} ms", r.busy.p99_ms <= MAX_BUSY_P99_MS,
             f"{r.busy.p99_ms:.2f} ms"),
            (f"peak RSS <= {MAX_RSS_MB:g} MB", r.peak_rss_mb <= MAX_RSS_MB,
             f"{r.peak_rss_mb:.1f} MB"),
            ("no errors at saturation", saturation_errors == 0, f"{saturation_errors}"),
        ]  # fmt: skip
        for label, ok, value in checks:
            passed &= ok
            print(f"{'PASS' if ok else 'FAIL'}  {r.server:10} {label:40} {value}")
        for example in r.error_examples[:3]:
            print(f"      e.g. {example!r}")
        branch = "office open" if r.office_open_calls > r.office_closed_calls else "out of hours"
        print(
            f"      {r.calls_finished} whole calls ({branch}), {r.sms_sent} SMS sent by its"
            f" dispatcher, {r.signed_on_the_spot} requests signed during the run;"
            f" busy-night errors: {r.busy.errors}"
        )
    return passed


def save(
    results: list[Figures], machine: dict[str, Any], profile: Profile, c: int, configs: list[str]
) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    data = {
        "when": stamp,
        "machine": machine,
        "profile": asdict(profile),
        "saturation_callers": c,
        "workloads": WORKLOADS,
        "configs": {
            DEFAULTS: "nightdesk serve as it starts: dispatcher inside (SMS to the fake Twilio), "
            "INFO logs to a file",
            SECONDARY: LEAN,
        },
        "measured_configs": configs,
        "busy_night": {"callers": BUSY_CALLERS, "every_s": BUSY_EVERY_S, "ramp_s": BUSY_RAMP_S},
        "targets": {
            "min_ceiling_ratio": MIN_CEILING_RATIO,
            "max_busy_p99_ms": MAX_BUSY_P99_MS,
            "max_rss_mb": MAX_RSS_MB,
            "saturation_errors": 0,
        },
        "results": [asdict(r) for r in results],
    }
    write_results("webhooks", stamp, data)


if __name__ == "__main__":
    sys.exit(main())
