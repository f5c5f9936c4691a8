"""`nightdesk demo`, run as a user runs it: a trial call's texts show on its sandbox page."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.support.processes import clean_env, free_port, serving, wait_until_ready

NIGHTDESK = Path(sys.executable).parent / "nightdesk"
ACME_ON_CALL = "+441134960502"


def test_the_demo_shows_what_its_sandbox_sent_on_its_page(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(NIGHTDESK_FLOWS_DIR=str(ROOT / "voice_flows"))
    log = tmp_path / "demo.log"
    with serving([NIGHTDESK, "demo", "--port", str(port)], env, tmp_path, log) as demo:
        home = wait_until_ready(f"{base}/", demo, log)
        assert 'href="/sandbox"' in home.text
        assert f"{base}/sandbox shows them all" in log.read_text()
        call = subprocess.run(
            [NIGHTDESK, "call", "acme-plumbing", "--url", base, "--press", "2",
             "--say", "Sam Taylor", "--say", "07911 123456", "--press", "1", "--say", "Leaking"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert call.returncode == 0, call.stdout + call.stderr

        page = httpx.get(f"{base}/sandbox")  # from this machine: no sign-in
        deadline = time.monotonic() + 20
        while ACME_ON_CALL not in page.text and demo.poll() is None:
            assert time.monotonic() < deadline, "the demo sent no text in 20 s"
            time.sleep(0.2)  # the demo's own dispatcher sends, in the background
            page = httpx.get(f"{base}/sandbox")

    assert page.status_code == 200, log.read_text()
    assert ACME_ON_CALL in page.text, log.read_text()
    assert "Sam Taylor" in page.text
