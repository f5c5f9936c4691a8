"""The demo flows in voice_flows/: what `nightdesk demo` loads and the README shows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import phonenumbers
import pytest

from app.flows.check import most_menus_before_message
from app.flows.engine import Dial, Gather, Say, Turn, start_call
from app.flows.jsonschema import flow_json_schema
from app.flows.loader import load_flow_file, load_flows
from app.flows.schema import Flow

FLOWS_DIR = Path(__file__).resolve().parents[2] / "voice_flows"
DEMO_FILES = sorted(FLOWS_DIR.glob("*.yaml"))
CALLER = "+441134960999"


def demo(client: str) -> Flow:
    return load_flow_file(FLOWS_DIR / f"{client}.yaml").flow


def spoken(turn: Turn) -> str:
    """Everything the caller hears in one turn, the prompts of a gather included."""
    said: list[str] = []
    for action in turn.actions:
        prompts = action.prompt if isinstance(action, Gather) else (action,)
        said += [prompt.text for prompt in prompts if isinstance(prompt, Say)]
    return " ".join(said)


def test_there_are_three_demo_flows() -> None:
    assert [path.stem for path in DEMO_FILES] == [
        "acme-plumbing",
        "harbour-law",
        "riverside-medical",
    ]


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_a_demo_flow_passes_every_check_with_at_most_two_menus(path: Path) -> None:
    flow = load_flow_file(path).flow
    assert most_menus_before_message(flow) <= 2


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_a_demo_flow_points_editors_at_the_schema(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./flow.schema.json"


@pytest.mark.parametrize("path", DEMO_FILES, ids=lambda path: path.stem)
def test_every_demo_phone_number_is_valid(path: Path) -> None:
    flow = load_flow_file(path).flow
    numbers = flow.numbers + [c.phone for c in flow.contacts if c.phone]
    for number in numbers:
        assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number


def test_the_demo_flows_load_together_without_clashes() -> None:
    loaded, problems = load_flows([FLOWS_DIR])
    assert problems == []
    assert len(loaded) == len(DEMO_FILES)


def test_the_published_schema_is_up_to_date() -> None:
    """The file `nightdesk flows schema --output voice_flows/flow.schema.json` writes."""
    published = (FLOWS_DIR / "flow.schema.json").read_text(encoding="utf-8")
    assert published == json.dumps(flow_json_schema(), indent=2) + "\n"


def test_acme_callers_on_a_bank_holiday_hear_that_it_is_a_bank_holiday() -> None:
    summer_bank_holiday = dt.datetime(2026, 8, 31, 9, 0, tzinfo=dt.UTC)  # 10:00 in London
    turn = start_call(demo("acme-plumbing"), CALLER, summer_bank_holiday)
    assert "closed today for the bank holiday" in spoken(turn)
    assert "press 1 or say emergency" in spoken(turn)


def test_acme_callers_in_office_hours_are_put_through_to_the_office() -> None:
    tuesday_morning = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
    turn = start_call(demo("acme-plumbing"), CALLER, tuesday_morning)
    assert Dial("+441134960123", 25) in turn.actions


def test_riverside_callers_hear_the_911_warning_first() -> None:
    late_evening = dt.datetime(2026, 3, 4, 2, 0, tzinfo=dt.UTC)  # 21:00 in New York
    turn = start_call(demo("riverside-medical"), CALLER, late_evening)
    assert spoken(turn).startswith(
        "Thank you for calling Riverside Medical Group. If this is a life-threatening emergency, "
        "please hang up and dial 911."
    )


def test_harbour_law_callers_after_hours_choose_client_enquiry_or_someone_now() -> None:
    sydney_night = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)  # 23:00 in Sydney
    turn = start_call(demo("harbour-law"), CALLER, sydney_night)
    heard = spoken(turn)
    assert "existing client, press 1" in heard
    assert "speak with someone now, press 0" in heard
