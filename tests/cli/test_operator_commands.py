"""The `nightdesk` command as an operator uses it: flows, a trial call, reading messages."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import nightdesk

ROOT = Path(__file__).resolve().parents[2]


def test_flows_check_passes_the_demo_flows_and_says_how_soon_a_message_can_be_left(
    flows_dir: Path,
) -> None:
    code, output = nightdesk("flows", "check")
    assert code == 0
    assert "acme-plumbing: " in output
    assert "at most 1 menu before a message can be left" in output


def test_flows_check_names_the_file_line_and_step_of_a_mistake_and_exits_1(
    flows_dir: Path,
) -> None:
    broken = flows_dir / "acme-plumbing.yaml"
    broken.write_text(broken.read_text().replace("goto: name", "goto: nmae", 1))
    code, output = nightdesk("flows", "check", str(broken))
    assert code == 1
    assert "acme-plumbing.yaml:" in output
    assert "unknown step 'nmae'" in output


def test_a_broken_file_is_refused_whole_and_the_loaded_version_stays(flows_dir: Path) -> None:
    assert nightdesk("flows", "sync")[0] == 0
    acme = flows_dir / "acme-plumbing.yaml"
    acme.write_text(acme.read_text().replace("timezone: Europe/London", "timezone: Europe/Leeds"))
    code, output = nightdesk("flows", "sync")
    assert code == 1
    assert "refused" in output
    assert "unchanged riverside-medical" in output
    # Calls still run on the version loaded before.
    code, output = nightdesk("call", "acme-plumbing", "--press", "2", "--say", "Kim")
    assert code == 0, output
    assert "Acme Plumbing" in output


def test_an_operator_tries_a_christmas_call_and_reads_the_message_as_json(flows_dir: Path) -> None:
    code, output = nightdesk(
        "call", "acme-plumbing", "--at", "2026-12-25T02:00",
        "--press", "2", "--say", "Sam Taylor", "--say", "07911 123456", "--press", "1",
        "--say", "The boiler is leaking",
    )  # fmt: skip
    assert code == 0, output
    assert "bank holiday" in output
    assert 'caller:    "The boiler is leaking"' in output

    code, output = nightdesk("messages", "list", "--json")
    assert code == 0
    (message,) = json.loads(output)
    assert {"id", "client", "caller", "urgency", "status", "answers", "transcription",
            "recording_url", "created_at"} <= message.keys()  # fmt: skip
    assert message["client"] == "acme-plumbing"
    assert message["answers"]["name"] == "Sam Taylor"
    assert message["created_at"].startswith("2026-12-25T02:00")

    code, output = nightdesk("messages", "show", str(message["id"]))
    assert code == 0
    assert "Timeline:" in output
    assert "heard" in output

    assert "acknowledged" in nightdesk("messages", "ack", str(message["id"]))[1]
    assert "already" in nightdesk("messages", "ack", str(message["id"]))[1]
    assert nightdesk("messages", "show", "999")[0] == 1


def test_oncall_shows_who_covers_christmas_and_the_next_handoffs(flows_dir: Path) -> None:
    code, output = nightdesk("oncall", "acme-plumbing", "--at", "2026-12-25T02:00")
    assert code == 0
    assert "Priya Shah" in output.splitlines()[0]
    assert "then" in output


def test_flows_schema_matches_the_published_file(flows_dir: Path) -> None:
    code, output = nightdesk("flows", "schema")
    assert code == 0
    assert json.loads(output) == json.loads((ROOT / "voice_flows" / "flow.schema.json").read_text())
