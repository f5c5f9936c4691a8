"""A throwaway PostgreSQL server for the tests and benchmarks: start it, hand out a URL, delete it.

From Python (benchmarks):   with throwaway_postgres() as url: ...
From a shell (scripts/test): python scripts/throwaway_postgres.py run -- pytest -q

Standard library only, so any Python 3.11 can run it before the project's environment exists.
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user; as
anyone else it runs as that user. The server is tuned for speed over durability (fsync=off):
its data lives in a temporary directory that is removed when it stops.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

URL_VARIABLE = "NIGHTDESK_TEST_DATABASE_URL"
SYSTEM_USER = "postgres"  # the server's OS user when we are root; also its superuser role

# Durability is worthless for a database deleted in a minute, and costs most of the test time.
# https://www.postgresql.org/docs/current/non-durability.html
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


@contextmanager
def throwaway_postgres(database: str = "nightdesk_test") -> Iterator[str]:
    """Start a private server on a free loopback port and yield a SQLAlchemy URL to `database`.

    The server is stopped and its directory removed when the block ends, however it ends.
    """
    with throwaway_postgres_server(database) as server:
        yield server.url


@dataclass
class ThrowawayServer:
    """A running throwaway server: its URL, and stop()/start() for outage tests
    (`python -m bench.faults` stops it mid-run and starts it again)."""

    url: str
    as_user: str | None
    workdir: Path
    bindir: Path

    def stop(self) -> None:
        """A fast shutdown: connections are cut, as when a server goes away."""
        self._pg_ctl("--mode", "fast", "--wait", "stop")

    def start(self) -> None:
        self._pg_ctl("--log", str(self.workdir / "server.log"), "--wait", "start")

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        data = str(self.workdir / "data")
        _run(self.as_user, self.workdir, self.bindir / "pg_ctl", "--pgdata", data, *args,
             check=check)  # fmt: skip


@contextmanager
def throwaway_postgres_server(database: str = "nightdesk_test") -> Iterator[ThrowawayServer]:
    """`throwaway_postgres`, yielding the server itself."""
    bindir = find_postgres_bindir() or install_postgres()
    as_user = _server_user()
    workdir = Path(tempfile.mkdtemp(prefix="nightdesk-pg-", dir="/tmp"))
    data = workdir / "data"
    try:
        if as_user:
            shutil.chown(workdir, as_user, as_user)
        port = _free_port()
        _run(
            as_user,
            workdir,
            bindir / "initdb",
            "--pgdata",
            str(data),
            "--username",
            SYSTEM_USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        settings = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": f"'{workdir}'"}
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        url = f"postgresql+psycopg://{SYSTEM_USER}@127.0.0.1:{port}/{database}"
        server = ThrowawayServer(url, as_user, workdir, bindir)
        server.start()
        try:
            _run(
                as_user,
                workdir,
                bindir / "createdb",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--username",
                SYSTEM_USER,
                database,
            )
            yield server
        finally:
            # Immediate: no shutdown checkpoint, the data is about to be deleted anyway.
            server._pg_ctl("--mode", "immediate", "--wait", "stop", check=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def find_postgres_bindir() -> Path | None:
    """The newest Debian-packaged server (/usr/lib/postgresql/N/bin), else `initdb` on the PATH."""
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if candidates:
        return max(candidates, key=lambda p: _version_key(p.parent.name))
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def install_postgres() -> Path:
    """Install the server from apt, with sudo when we are not root; the package is ~40 MB."""
    print("postgres: not found, installing it with apt-get", file=sys.stderr)
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise SystemExit(
            f"postgres: no server found and no apt-get; install PostgreSQL or set {URL_VARIABLE}"
        )
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise SystemExit("postgres: installing PostgreSQL needs root or sudo")
        prefix = [sudo, "--preserve-env=DEBIAN_FRONTEND"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(None, None, *prefix, apt_get, "update", "--quiet", env=env)
    _run(
        None,
        None,
        *prefix,
        apt_get,
        "install",
        "--yes",
        "--quiet",
        "--no-install-recommends",
        "postgresql",
        env=env,
    )
    bindir = find_postgres_bindir()
    if bindir is None:
        raise SystemExit("postgres: apt-get installed postgresql but no initdb was found")
    return bindir


def _server_user() -> str | None:
    """Who runs the server: `postgres` when we are root (created if missing), else ourselves."""
    if os.geteuid() != 0:
        return None
    if _user_exists(SYSTEM_USER):
        return SYSTEM_USER
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    _run(
        None,
        None,
        useradd,
        "--system",
        "--user-group",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        SYSTEM_USER,
    )
    return SYSTEM_USER


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run(
    as_user: str | None, cwd: Path | None, *command: str | Path, check: bool = True, **kwargs: Any
) -> None:
    """Run one command quietly (its output is shown only if it fails), as `as_user` if given."""
    if as_user:
        # Drop root's supplementary groups too, not just its uid and gid.
        kwargs.update(user=as_user, group=as_user, extra_groups=[])
    result = subprocess.run(  # noqa: S603 - fixed commands built here, no shell
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
    if check and result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise subprocess.CalledProcessError(result.returncode, result.args)


def _free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _raise_on_sigterm(signum: int, _frame: object) -> None:
    # Turn a polite kill (CI cancelling the job) into an exception, so the server still stops.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """`run -- CMD...`: run CMD with NIGHTDESK_TEST_DATABASE_URL pointing at a throwaway server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="action", required=True)
    run = commands.add_parser("run", help="run a command against a throwaway server")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command: run -- CMD...")

    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    started = time.monotonic()
    try:
        with throwaway_postgres() as url:
            print(f"postgres: {url} ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
            env = {**os.environ, URL_VARIABLE: url}
            code = subprocess.run(command, env=env, check=False).returncode  # noqa: S603
            stopping = time.monotonic()
    except KeyboardInterrupt:  # Ctrl-C: the server is already stopped and removed
        return 128 + signal.SIGINT
    print(f"postgres: stopped and removed in {time.monotonic() - stopping:.1f} s", file=sys.stderr)
    # A child killed by a signal reports -N; a shell reports 128+N.
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
