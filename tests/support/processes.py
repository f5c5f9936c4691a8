"""Programs run as a user runs them: in a clean environment, and servers started, waited for
until they answer, and stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without the suite's own: no NIGHTDESK_* settings, no virtualenv or
    PYTHONPATH that could put the checkout on the command's path.

    PYTHONDONTWRITEBYTECODE goes too: without bytecode every command would compile its whole
    import graph again (about 3 s each on a slow machine).
    """
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("NIGHTDESK_") and name not in dropped
    }
    return {**env, "UV_PYTHON_DOWNLOADS": "never", **settings}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(
    command: list[str | Path], env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, its output in `log`; SIGTERM at the end, SIGKILL if it lingers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(part) for part in command], env=env, cwd=cwd, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_ready(
    url: str, server: subprocess.Popen[bytes], log: Path, within: float = 30
) -> httpx.Response:
    """Ask `url` until it answers 200, for at most `within` seconds. Between tries, wait on
    the server process itself: if it exits, that is the failure, reported at once with its log."""
    deadline = time.monotonic() + within
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=2)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if answer.status_code == 200:
                return answer
            last = f"{answer.status_code} {answer.text}"
        try:
            server.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        break
    pytest.fail(f"{url} not ready (exit code {server.poll()}, last: {last})\n{log.read_text()}")
