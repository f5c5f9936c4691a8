"""What a newcomer meets in their first hour with the command: local times, the sandbox, and
errors that say what to do in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.cli import main
from app.telephony.sandbox.smtp_inbox import free_port
from tests.support.cli import nightdesk


def run_main(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """`nightdesk ARGS` as the installed script runs it, errors and all."""
    monkeypatch.setattr(sys, "argv", ["nightdesk", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def test_times_without_an_offset_are_the_clients_own_local_time(flows_dir: Path) -> None:
    code, output = nightdesk("oncall", "riverside-medical", "--at", "2026-12-25T02:00")

    assert code == 0, output
    assert "Fri 25 Dec 2026 02:00 EST" in output


def test_a_time_that_is_not_a_time_is_one_line_of_usage_not_a_traceback(flows_dir: Path) -> None:
    code, output = nightdesk("oncall", "riverside-medical", "--at", "tomorrow")

    assert code == 2
    assert "is not a time" in output
    assert "Traceback" not in output


def test_a_trial_call_in_process_shows_what_the_sandbox_sent(flows_dir: Path) -> None:
    code, output = nightdesk(
        "call", "acme-plumbing", "--at", "2026-12-25T02:00", "--press", "2",
        "--say", "Sam Taylor", "--say", "07911 123456", "--press", "1",
        "--say", "The boiler is leaking",
    )  # fmt: skip

    assert code == 0, output
    assert "(the call happens at Fri 25 Dec 2026 02:00 GMT)" in output
    assert "[sandbox] SMS to" in output
    assert "Warning" not in output


def test_calling_a_server_that_is_not_running_fails_and_says_so(flows_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, output = nightdesk("call", "acme-plumbing", "--url", url, "--press", "2")

    assert code == 1
    assert f"could not reach {url}" in output


def test_an_unknown_client_is_named_with_the_ones_there_are(flows_dir: Path) -> None:
    code, output = nightdesk("call", "acme", "--press", "2")

    assert code == 2
    assert "no client 'acme'" in output
    assert "acme-plumbing" in output


def test_reading_messages_before_there_is_a_database_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NIGHTDESK_DATABASE_URL", raising=False)

    assert run_main("messages", "list", monkeypatch=monkeypatch) == 1

    error = capsys.readouterr().err
    assert "run `nightdesk db upgrade`" in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "var").exists()
