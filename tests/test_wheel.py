"""The wheel works anywhere: built from the checkout, installed into a fresh virtualenv, and run
from a directory that is not the checkout, `nightdesk` migrates its database, checks and syncs
flow files, and serves.

Slow-ish (a build, an install and five processes' start-up), so it runs on the SQLite pass of
`scripts/test` only: the wheel is the same whichever database the suite is testing.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.databases import postgres_server_url
from tests.support.processes import clean_env, free_port, serving, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "voice_flows"
COMMAND_TIMEOUT = 90  # seconds for any one command; none takes more than a few

pytestmark = pytest.mark.skipif(
    postgres_server_url() is not None, reason="the wheel is tested once, on the SQLite pass"
)


def test_the_installed_wheel_migrates_checks_syncs_and_serves_from_any_directory(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "app/migrations/env.py" in names
    assert any(name.startswith("app/migrations/versions/") for name in names)
    assert not [n for n in names if n.split("/")[0] in {"tests", "bench", "scripts", "migrations"}]
    assert not [n for n in names if "__pycache__" in n]

    nightdesk = install(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = elsewhere / "nightdesk.db"
    env = clean_env(NIGHTDESK_DATABASE_URL=f"sqlite:///{database}")

    python = nightdesk.with_name("python")
    imported = run([python, "-c", "import app; print(app.__file__)"], env, elsewhere)
    assert Path(imported.strip()).is_relative_to(tmp_path / "venv"), "not the installed package"

    assert "database is up to date" in run([nightdesk, "db", "upgrade"], env, elsewhere)
    assert database.exists()

    flow_files = sorted(FLOWS.glob("*.yaml"))
    checked = run([nightdesk, "flows", "check", FLOWS], env, elsewhere)
    assert checked.count("ok  ") == len(flow_files) > 0

    flows_env = {**env, "NIGHTDESK_FLOWS_DIR": str(FLOWS)}
    synced = run([nightdesk, "flows", "sync"], flows_env, elsewhere)
    assert synced.split().count("new") == len(flow_files)

    port = free_port()
    log = tmp_path / "serve.log"
    with serving([nightdesk, "serve", "--port", str(port)], env, elsewhere, log) as server:
        ready = wait_until_ready(f"http://127.0.0.1:{port}/readyz", server, log)
        assert ready.json() == {"status": "ok", "database": "ok"}
    # uvicorn shuts down, then ends by the signal it was sent; -SIGKILL would mean it hung.
    stopped = server.returncode in (0, -signal.SIGTERM)
    assert stopped, f"nightdesk serve did not stop on SIGTERM:\n{log.read_text()}"


# --- building, installing, running -------------------------------------------------------------


def uv() -> list[str]:
    """uv as scripts/test finds it: on PATH, or the module pip installed for python3."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def run(command: list[str | Path], env: dict[str, str], cwd: Path) -> str:
    """Run a command to its end; its stdout, or a failure that shows everything it said."""
    done = subprocess.run(
        [str(part) for part in command],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, command))} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
    )
    return done.stdout


def build_wheel(dist: Path) -> Path:
    build = [*uv(), "build", "--wheel", "--python", sys.executable, "--out-dir", str(dist)]
    run([*build, ROOT], clean_env(), ROOT)
    (wheel,) = dist.glob("nightdesk-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> Path:
    """A fresh virtualenv on this Python with the wheel in it; its `nightdesk` command."""
    env = clean_env()
    run([*uv(), "venv", "--quiet", "--python", sys.executable, venv], env, venv.parent)
    python = venv / "bin" / "python"
    run([*uv(), "pip", "install", "--quiet", "--python", python, wheel], env, venv.parent)
    return venv / "bin" / "nightdesk"
