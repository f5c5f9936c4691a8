"""The servers under test, each a subprocess on the same loopback port (so one set of signed
requests serves them all): the ceiling app, and `nightdesk serve` on a fresh database."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Bytecode for the servers' Python, kept out of the tree: without it each server process would
# compile every module it imports at start (the shell may set PYTHONDONTWRITEBYTECODE).
PYCACHE = Path(tempfile.gettempdir()) / "nightdesk-bench-pycache"
BENCH_TOKEN = "bench-auth-token-0123456789abcdef"  # noqa: S105 - a throwaway test token
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A running server process: its pid, for its memory and CPU, and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process has had, in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU the process (all its threads) has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def code_version() -> str:
    """The commit measured, and whether app/ differs from it (the figures are for that code)."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted app/ changes" if git("status", "--porcelain", "app") else "")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def nightdesk_command() -> list[str]:
    """The `nightdesk` script of this environment (the venv `uv run` or .venv/bin/python uses)."""
    beside = Path(sys.executable).with_name("nightdesk")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("nightdesk")
    if found is None:
        raise SystemExit("bench: no `nightdesk` command; run `uv sync` first")
    return [found]


# The secondary configuration, reported beside the defaults: the webhook path alone.
LEAN = {"NIGHTDESK_RUN_DISPATCHER": "false", "NIGHTDESK_LOG_LEVEL": "WARNING"}


def nightdesk_env(
    database_url: str, port: int, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The service's settings for a run: only ours, none inherited from the shell (and the
    processes run in the work folder, so no `.env` is read either). Everything else is as
    `nightdesk serve` starts by default: the dispatcher inside, INFO logs. `overrides` replace
    or add NIGHTDESK_ settings: the fake Twilio's (`twilio_settings`), or `LEAN`."""
    env = {k: v for k, v in python_env().items() if not k.startswith("NIGHTDESK_")}
    env.update(
        NIGHTDESK_DATABASE_URL=database_url,
        NIGHTDESK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        NIGHTDESK_TWILIO_AUTH_TOKEN=BENCH_TOKEN,
        NIGHTDESK_FLOWS_DIR=str(ROOT / "voice_flows"),
    )
    env.update(overrides or {})
    return env


def twilio_settings(base_url: str, account_sid: str) -> dict[str, str]:
    """Settings that send the server's Twilio REST requests (SMS, calls) to a fake Twilio, with a
    fake account; the fake signs its status callbacks with the same token as the webhooks."""
    return {
        "NIGHTDESK_TWILIO_API_BASE": base_url,
        "NIGHTDESK_TWILIO_ACCOUNT_SID": account_sid,
        "NIGHTDESK_TWILIO_AUTH_TOKEN": BENCH_TOKEN,
    }


def python_env() -> dict[str, str]:
    """This environment, with bytecode cached under PYCACHE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def prepare_database(
    database_url: str, port: int, workdir: Path, overrides: Mapping[str, str] | None = None
) -> None:
    """Migrate the database and load voice_flows/ (or NIGHTDESK_FLOWS_DIR) into it, with the real
    commands."""
    env = nightdesk_env(database_url, port, overrides)
    for args in (["db", "upgrade"], ["flows", "sync"]):
        result = subprocess.run(
            [*nightdesk_command(), *args], cwd=workdir, env=env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"bench: nightdesk {' '.join(args)} failed:\n{result.stderr}")


@contextmanager
def nightdesk_server(
    database_url: str,
    port: int,
    workdir: Path,
    overrides: Mapping[str, str] | None = None,
    name: str = "nightdesk",
) -> Iterator[Server]:
    """`nightdesk serve --port P`: uvicorn, uvloop, httptools, one worker. Its output (INFO
    logs by default) goes to a file in `workdir`, never to a pipe that could fill."""
    command = [*nightdesk_command(), "serve", "--port", str(port)]
    env = nightdesk_env(database_url, port, overrides)
    with _server(name, command, env, port, workdir, cwd=workdir) as s:
        yield s


@contextmanager
def ceiling_server(
    port: int, workdir: Path, app: str = "bench.ceiling:app", name: str = "ceiling"
) -> Iterator[Server]:
    """A bare FastAPI app of bench/ceiling.py, on the same uvicorn settings."""
    command = [
        sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**python_env(), "PYTHONPATH": str(ROOT)}
    with _server(name, command, env, port, workdir, cwd=ROOT) as server:
        yield server


@contextmanager
def _server(
    name: str, command: list[str], env: dict[str, str], port: int, workdir: Path, cwd: Path
) -> Iterator[Server]:
    _wait_until_free(port)
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
    server = Server(name, process, log)
    try:
        _wait_until_up(server, port)
        yield server
    finally:
        stop_process(process, signal.SIGINT, timeout=10)


def _wait_until_up(server: Server, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"bench: {server.name} exited:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {server.name} did not answer in {timeout} s:\n{server.log_tail()}")


def _wait_until_free(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.1)
    raise SystemExit(f"bench: port {port} is still taken")


def stop_process(process: subprocess.Popen[bytes], signum: int, timeout: float) -> None:
    """Ask a server to stop (its shutdown is part of what is tested), then insist."""
    if process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_results(kind: str, stamp: str, data: dict[str, Any]) -> None:
    """bench/results/<kind>-<stamp>.json (not committed), and say where it went."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
    print(f"\nwritten: {shown}")


class database:  # noqa: N801 - used as a context manager, reads as one
    """A fresh SQLite file (`name`.db), or a throwaway PostgreSQL server: (SQLAlchemy URL,
    version)."""

    def __init__(self, backend: str, workdir: Path, name: str = "nightdesk") -> None:
        self.backend, self.workdir, self.name = backend, workdir, name
        self._postgres: Any = None

    def __enter__(self) -> tuple[str, str]:
        if self.backend == "sqlite":
            import sqlite3

            return f"sqlite:///{self.workdir / f'{self.name}.db'}", sqlite3.sqlite_version
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
    """CPU time used by everything on the machine so far (all cores, from /proc/stat), time
    the hypervisor took from it not included (see `stolen_cpu_seconds`)."""
    fields = _cpu_fields()
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:7]) - idle) / CLOCK_TICKS


def stolen_cpu_seconds() -> float:
    """CPU time the hypervisor gave to other machines while ours wanted it ("steal"): on a
    shared host, the reason a run can be slow with nothing of ours running."""
    return _cpu_fields()[7] / CLOCK_TICKS


def _cpu_fields() -> list[int]:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal ..."""
    return [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def describe_machine() -> dict[str, Any]:
    """The machine and the code measured, for the results."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages = (
        "uvicorn", "uvloop", "httptools", "fastapi", "starlette", "python-multipart",
        "sqlalchemy", "psycopg", "twilio",
    )  # fmt: skip
    memory = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in packages},
        "commit": code_version(),
    }
