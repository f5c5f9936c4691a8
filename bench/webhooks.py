"""Benchmark of the voice webhook path: `uv run python -m bench.webhooks [--quick] [--backend ...]`.

Measures, in one run and with one load generator, a bare FastAPI app (the ceiling, bench/ceiling.py)
and `nightdesk serve` on SQLite and on PostgreSQL, with whole scripted calls (bench/load.py):
  1. busy night: 32 callers, each taking a step a second (open loop) -> p50/p99/max latency;
  2. saturation: C callers with no think time -> requests/s, and its ratio to the ceiling's,
     measured again just before and just after each Nightdesk server's;
  3. the server's peak RSS (VmHWM) at the end.
Prints a table with pass/fail against the targets and writes bench/results/webhooks-<time>.json.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import uvloop

from bench.ceiling import FORM_PARSER
from bench.load import Book, CallBook, Replay, Tally, busy_night, percentile, saturate
from bench.servers import (
    BENCH_TOKEN,
    CLOCK_TICKS,
    Server,
    ceiling_server,
    code_version,
    free_port,
    nightdesk_server,
    prepare_database,
    write_results,
)

# The targets, for one uvicorn worker.
MIN_CEILING_RATIO = 0.50
MAX_BUSY_P99_MS = 15.0
MAX_RSS_MB = 150.0
BUSY_CALLERS = 32
BUSY_EVERY_S = 1.0


@dataclass(frozen=True)
class Profile:
    warmup_s: float  # whole calls at saturation before anything is measured (not counted)
    busy_s: float
    saturation_warmup_s: float
    saturation_s: float
    signed_calls: int  # calls signed before the timed windows


FULL = Profile(warmup_s=2, busy_s=20, saturation_warmup_s=2, saturation_s=10, signed_calls=9000)
QUICK = Profile(
    warmup_s=0.5, busy_s=3, saturation_warmup_s=0.5, saturation_s=2.5, signed_calls=1800
)


@dataclass
class Figures:
    """One server's results."""

    server: str
    saturation_rps: float
    ceiling_rps: float  # what the ratio is taken against (the ceiling's own: itself)
    ceiling_rps_around: list[float]  # the ceiling's, just before and just after this server's
    saturation_p50_ms: float
    saturation_p99_ms: float
    saturation_errors: int
    busy_p50_ms: float
    busy_p99_ms: float
    busy_max_ms: float
    busy_requests: int
    busy_errors: int
    busy_latest_send_ms: float  # how far behind schedule the open loop ever was
    peak_rss_mb: float
    server_cpu_pct: float  # during saturation (100 = one core)
    generator_cpu_pct: float
    others_cpu_pct: float  # everything else on the machine (PostgreSQL too) during saturation
    calls_finished: int
    office_open_calls: int
    office_closed_calls: int
    signed_on_the_spot: int
    error_examples: list[str]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a ~25 s smoke run (SQLite only)")
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default=None,
        help="database(s) to measure (default: both; sqlite with --quick)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=32, help="saturation callers (default 32)"
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    backend = args.backend or ("sqlite" if args.quick else "both")
    backends = ["sqlite", "postgresql"] if backend == "both" else [backend]
    machine = describe_machine()
    machine["commit"] = code_version()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}")
    started = time.monotonic()
    port = free_port()
    book = CallBook("127.0.0.1", port, BENCH_TOKEN, profile.signed_calls)
    print(f"signed {profile.signed_calls} calls in {time.monotonic() - started:.1f} s", flush=True)

    results: list[Figures] = []
    c = args.concurrency
    with (
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        tempfile.TemporaryDirectory(prefix="nightdesk-bench-") as tmp,
    ):
        workdir = Path(tmp)
        # The ceiling stays up on a port of its own, to be measured again around each server.
        ceiling_port = free_port()
        with ceiling_server(ceiling_port, workdir) as ceiling:
            again = book.again(ceiling_port)
            results.append(measure(runner.run, ceiling, "ceiling", again, profile, c))
            for backend in backends:
                with database(backend, workdir) as (url, version):
                    machine[f"{backend}_version"] = version
                    book.restart()
                    prepare_database(url, port, workdir)
                    with nightdesk_server(url, port, workdir) as server:
                        figures = measure(
                            runner.run, server, backend, book, profile, c, ceiling=again
                        )
                        results.append(figures)
    passed = report(results, args.concurrency)
    machine["seconds"] = round(time.monotonic() - started, 1)
    save(results, machine, profile, args.concurrency)
    return 0 if passed else 1


def measure(
    run: Callable[[Coroutine[Any, Any, Tally]], Tally],
    server: Server,
    name: str,
    book: Book,
    profile: Profile,
    concurrency: int,
    ceiling: Replay | None = None,
) -> Figures:
    """Warm up, then the busy night, then saturation, then read the server's peak memory.

    With `ceiling`, its saturation is measured again just before and just after this server's,
    and this server's ratio is taken against the mean of the two: this machine's speed drifts
    by a fifth over a few minutes (shared cores), which a ceiling measured minutes earlier
    would put into the ratio.
    """
    check = name != "ceiling"  # the ceiling's TwiML is constant; its statuses are still checked
    print(f"{name}: warming up", flush=True)
    run(saturate(book, concurrency, 0, profile.warmup_s, check))
    print(f"{name}: busy night, {BUSY_CALLERS} callers, {profile.busy_s:g} s", flush=True)
    busy = run(busy_night(book, BUSY_CALLERS, BUSY_EVERY_S, profile.busy_s, check))

    def saturation(target: Book) -> Tally:
        return run(
            saturate(target, concurrency, profile.saturation_warmup_s, profile.saturation_s, check)
        )

    around: list[float] = []
    if ceiling is not None:
        print(f"ceiling: saturation again, before {name}", flush=True)
        around.append(len(saturation(ceiling).latencies) / profile.saturation_s)
    print(f"{name}: saturation, {concurrency} callers, {profile.saturation_s:g} s", flush=True)
    cpu, own_cpu, machine_cpu = server.cpu_seconds(), time.process_time(), machine_cpu_seconds()
    wall = time.perf_counter()
    sat = saturation(book)
    wall = time.perf_counter() - wall
    cpu, own_cpu = server.cpu_seconds() - cpu, time.process_time() - own_cpu
    machine_cpu = machine_cpu_seconds() - machine_cpu
    if ceiling is not None:
        print(f"ceiling: saturation again, after {name}", flush=True)
        around.append(len(saturation(ceiling).latencies) / profile.saturation_s)
    if server.process.poll() is not None:
        raise SystemExit(f"bench: {name} died:\n{server.log_tail()}")
    rps = len(sat.latencies) / profile.saturation_s
    return Figures(
        server=name,
        saturation_rps=rps,
        ceiling_rps=sum(around) / len(around) if around else rps,
        ceiling_rps_around=around,
        saturation_p50_ms=percentile(sat.latencies, 0.50) * 1000,
        saturation_p99_ms=percentile(sat.latencies, 0.99) * 1000,
        saturation_errors=sum(sat.errors.values()),
        busy_p50_ms=percentile(busy.latencies, 0.50) * 1000,
        busy_p99_ms=percentile(busy.latencies, 0.99) * 1000,
        busy_max_ms=max(busy.latencies, default=float("nan")) * 1000,
        busy_requests=len(busy.latencies),
        busy_errors=sum(busy.errors.values()),
        busy_latest_send_ms=max(busy.late_sends, default=0.0) * 1000,
        peak_rss_mb=server.peak_rss_mb(),
        server_cpu_pct=100 * cpu / wall,
        generator_cpu_pct=100 * own_cpu / wall,
        others_cpu_pct=100 * max(0.0, machine_cpu - cpu - own_cpu) / wall,
        calls_finished=busy.calls_finished + sat.calls_finished,
        office_open_calls=busy.open_branch + sat.open_branch,
        office_closed_calls=busy.closed_branch + sat.closed_branch,
        signed_on_the_spot=book.signed_on_the_spot,
        error_examples=busy.examples + sat.examples,
    )


class database:  # noqa: N801 - used as a context manager, reads as one
    """A fresh SQLite file, or a throwaway PostgreSQL server: (SQLAlchemy URL, version)."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend, self.workdir = backend, workdir
        self._postgres: Any = None

    def __enter__(self) -> tuple[str, str]:
        if self.backend == "sqlite":
            import sqlite3

            return f"sqlite:///{self.workdir / 'nightdesk.db'}", sqlite3.sqlite_version
        from scripts.throwaway_postgres import throwaway_postgres

        print("postgresql: starting a throwaway server", flush=True)
        self._postgres = throwaway_postgres("nightdesk_bench")
        url: str = self._postgres.__enter__()
        return url, _durable_commits(url)

    def __exit__(self, *exc: object) -> None:
        if self._postgres is not None:
            self._postgres.__exit__(*exc)


def _durable_commits(url: str) -> str:
    """Make the throwaway server's commits as durable as SQLite's WAL + synchronous=NORMAL.

    scripts/throwaway_postgres.py turns fsync and synchronous_commit off for the tests. With
    synchronous_commit on (fsync still off) each COMMIT waits for its WAL to be written to the
    OS, as SQLite's does: it survives a crash of the server process, not of the machine.
    """
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("ALTER SYSTEM SET synchronous_commit = 'on'")
        connection.execute("SELECT pg_reload_conf()")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute("SELECT version(), current_setting('synchronous_commit')")
        version, synchronous_commit = row.fetchone() or ("?", "?")
    if synchronous_commit != "on":
        raise SystemExit(f"bench: synchronous_commit is {synchronous_commit}, not on")
    return str(version).split(" on ")[0]


def machine_cpu_seconds() -> float:
    """CPU time used by everything on the machine so far (all cores, from /proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


def describe_machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import os

    packages = ("uvicorn", "uvloop", "httptools", "fastapi", "starlette", "sqlalchemy", "psycopg")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in packages},
    }


def report(results: list[Figures], concurrency: int) -> bool:
    """Print the table and the verdicts; True when every backend meets every target."""
    print()
    print(
        f"{'':12} | saturation, {concurrency} callers{'':13} | busy night, {BUSY_CALLERS} callers"
        f" x 1 step/s{'':3} | server"
    )
    print(
        f"{'server':12} | {'req/s':>7} {'x ceil':>6} {'p50 ms':>7} {'p99 ms':>7} {'err':>4} | "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'err':>4} | {'RSS MB':>6} {'CPU %':>5}"
    )
    for r in results:
        ratio = r.saturation_rps / r.ceiling_rps
        print(
            f"{r.server:12} | {r.saturation_rps:7.0f} {ratio:6.2f} {r.saturation_p50_ms:7.2f} "
            f"{r.saturation_p99_ms:7.2f} {r.saturation_errors:4d} | {r.busy_p50_ms:7.2f} "
            f"{r.busy_p99_ms:7.2f} {r.busy_max_ms:7.2f} {r.busy_errors:4d} | "
            f"{r.peak_rss_mb:6.1f} {r.server_cpu_pct:5.0f}"
        )
    print(
        "x ceil: against the ceiling measured again just before and just after each server: "
        + ", ".join(
            f"{r.server} " + " and ".join(f"{rps:.0f}" for rps in r.ceiling_rps_around)
            for r in results[1:]
        )
    )
    print("CPU during saturation (100% = one core): server above; load generator / everything else")
    print(
        "  "
        + ", ".join(
            f"{r.server} {r.generator_cpu_pct:.0f}% / {r.others_cpu_pct:.0f}%" for r in results
        )
        + "  (everything else includes PostgreSQL, and any other work on the machine)"
    )
    print()
    passed = True
    for r in results[1:]:
        checks = [
            (
                f"saturation >= {MIN_CEILING_RATIO:.0%} of the ceiling",
                r.saturation_rps / r.ceiling_rps >= MIN_CEILING_RATIO,
                f"{r.saturation_rps / r.ceiling_rps:.2f}",
            ),
            (f"busy night p99 <= {MAX_BUSY_P99_MS:g} ms", r.busy_p99_ms <= MAX_BUSY_P99_MS,
             f"{r.busy_p99_ms:.2f} ms"),
            (f"peak RSS <= {MAX_RSS_MB:g} MB", r.peak_rss_mb <= MAX_RSS_MB,
             f"{r.peak_rss_mb:.1f} MB"),
            ("no errors", r.saturation_errors + r.busy_errors == 0,
             f"{r.saturation_errors + r.busy_errors}"),
        ]  # fmt: skip
        for label, ok, value in checks:
            passed &= ok
            print(f"{'PASS' if ok else 'FAIL'}  {r.server:10} {label:36} {value}")
        for example in r.error_examples[:3]:
            print(f"      e.g. {example!r}")
        branch = "office open" if r.office_open_calls > r.office_closed_calls else "out of hours"
        print(
            f"      {r.calls_finished} whole calls ({branch}: {r.office_open_calls} open,"
            f" {r.office_closed_calls} closed), {r.signed_on_the_spot} signed during the run"
        )
    return passed


def save(results: list[Figures], machine: dict[str, Any], profile: Profile, c: int) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    data = {
        "when": stamp,
        "machine": machine,
        "profile": asdict(profile),
        "saturation_callers": c,
        "ceiling_form_parser": FORM_PARSER,
        "busy_night": {"callers": BUSY_CALLERS, "every_s": BUSY_EVERY_S},
        "targets": {
            "min_ceiling_ratio": MIN_CEILING_RATIO,
            "max_busy_p99_ms": MAX_BUSY_P99_MS,
            "max_rss_mb": MAX_RSS_MB,
        },
        "results": [asdict(r) for r in results],
    }
    write_results("webhooks", stamp, data)


if __name__ == "__main__":
    sys.exit(main())
