"""The servers under test, each a subprocess on the same loopback port (so one set of signed
requests serves them all): the ceiling app, and `nightdesk serve` on a fresh database."""

from __future__ import annotations

import json
import os
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


def nightdesk_env(
    database_url: str, port: int, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The service's settings for a run: only ours, none inherited from the shell; `overrides`
    replace or add NIGHTDESK_ settings (bench.dispatch turns the dispatcher on)."""
    env = {k: v for k, v in python_env().items() if not k.startswith("NIGHTDESK_")}
    env.update(
        NIGHTDESK_DATABASE_URL=database_url,
        NIGHTDESK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        NIGHTDESK_TWILIO_AUTH_TOKEN=BENCH_TOKEN,
        NIGHTDESK_LOG_LEVEL="WARNING",
        NIGHTDESK_FLOWS_DIR=str(ROOT / "voice_flows"),
        # The webhook path only: the dispatcher would try to reach api.twilio.com.
        NIGHTDESK_RUN_DISPATCHER="false",
    )
    env.update(overrides or {})
    return env


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
    database_url: str, port: int, workdir: Path, overrides: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """`nightdesk serve --port P`: uvicorn, uvloop, httptools, one worker."""
    command = [*nightdesk_command(), "serve", "--port", str(port)]
    env = nightdesk_env(database_url, port, overrides)
    with _server("nightdesk", command, env, port, workdir) as s:
        yield s


@contextmanager
def ceiling_server(port: int, workdir: Path) -> Iterator[Server]:
    """The bare FastAPI app, on the same uvicorn settings."""
    command = [
        sys.executable, "-m", "uvicorn", "bench.ceiling:app", "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--workers", "1",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    env = {**python_env(), "PYTHONPATH": str(ROOT)}
    with _server("ceiling", command, env, port, workdir) as server:
        yield server


@contextmanager
def _server(
    name: str, command: list[str], env: dict[str, str], port: int, workdir: Path
) -> Iterator[Server]:
    _wait_until_free(port)
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
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
