"""Loading flow files: every problem names the file, the line and the step, all in one go."""

from __future__ import annotations

import datetime as dt
import hashlib
import textwrap
from pathlib import Path

import pytest

from app.flows.loader import FlowFileError, LoadedFlow, load_flow_file, load_flows, parse_flow
from app.flows.schema import MenuStep

PATH = "voice_flows/test.yaml"
GOOD = """
client: test-plumbing
name: Test Plumbing
numbers: ["+441134960000"]
timezone: Europe/London
steps:
  greeting:
    type: say
    text: Thanks for calling.
    next: take
  take:
    type: take_message
"""


def text(snippet: str) -> str:
    """A flow file's text from an indented snippet, starting on line 1."""
    return textwrap.dedent(snippet).lstrip("\n")


def problems(snippet: str) -> list[str]:
    """The problems `flows check` would print for this file."""
    with pytest.raises(FlowFileError) as caught:
        parse_flow(text(snippet), PATH)
    return [str(problem) for problem in caught.value.problems]


def test_a_good_file_loads_with_the_hash_of_its_text() -> None:
    loaded = parse_flow(text(GOOD), PATH)
    assert loaded.flow.client == "test-plumbing"
    assert loaded.path == Path(PATH)
    assert loaded.sha256 == hashlib.sha256(text(GOOD).encode()).hexdigest()
    assert loaded.line_of(("steps", "take")) == 10


def test_a_typo_in_a_step_target_names_the_file_line_and_step() -> None:
    assert problems(GOOD.replace("next: take", "next: tkae")) == [
        "voice_flows/test.yaml:9: step 'greeting': next: unknown step 'tkae' "
        "(did you mean 'take'?)",
        "voice_flows/test.yaml:10: step 'take': no path from the start ('greeting') reaches it",
    ]


def test_a_yaml_syntax_error_names_its_line() -> None:
    found = problems(GOOD.replace("text: Thanks for calling.", "text: [Thanks for calling."))
    assert len(found) == 1
    assert found[0].startswith("voice_flows/test.yaml:9: not valid YAML:")


def test_an_unknown_field_names_its_line_and_the_field_it_was_probably_meant_to_be() -> None:
    assert problems(GOOD.replace("    text:", "    txt:")) == [
        "voice_flows/test.yaml:8: step 'greeting': unknown field 'txt' (did you mean 'text'?)"
    ]


def test_a_missing_field_and_an_unknown_step_type_name_the_step() -> None:
    found = problems(
        GOOD.replace("    next: take\n", "").replace("type: take_message", "type: take_mesage")
    )
    assert found == [
        "voice_flows/test.yaml:6: step 'greeting': missing required field 'next'",
        "voice_flows/test.yaml:9: step 'take': unknown step type 'take_mesage' (use say, menu, "
        "ask, record, branch, transfer, queue, take_message, hangup)",
    ]


def test_a_key_given_twice_is_refused_with_both_lines() -> None:
    found = problems(GOOD.replace("    next: take\n", "    next: take\n    next: greeting\n"))
    assert found == [
        "voice_flows/test.yaml:10: step 'greeting': next is given twice (first on line 9)"
    ]


def test_a_step_defined_twice_is_refused() -> None:
    found = problems(GOOD + "  take:\n    type: hangup\n")
    assert found == ["voice_flows/test.yaml:12: steps.take is given twice (first on line 10)"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("timezone: Europe/London\n", ""),
            "voice_flows/test.yaml:1: missing required field 'timezone'",
        ),
        (
            ("Europe/London", "Europe/Londres"),
            "voice_flows/test.yaml:4: timezone: unknown time zone 'Europe/Londres' "
            "(use an IANA name like Europe/London)",
        ),
        (
            ('"+441134960000"', '"01134960000"'),
            "voice_flows/test.yaml:3: numbers: '01134960000' is not a phone number in +E.164 form",
        ),
        (
            ("timezone: Europe/London\n", "timezone: Europe/London\nholidays: {country: EN}\n"),
            "voice_flows/test.yaml:5: holidays: unknown holiday country 'EN' "
            "(use ISO codes like GB, US)",
        ),
        (
            (
                "timezone: Europe/London\n",
                "timezone: Europe/London\nholidays: {country: GB, subdivision: LND}\n",
            ),
            "voice_flows/test.yaml:5: holidays: unknown subdivision 'LND' for GB",
        ),
    ],
)
def test_a_bad_value_names_its_line(change: tuple[str, str], expected: str) -> None:
    found = problems(GOOD.replace(*change))
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_transfer_to_on_call_without_a_rotation_names_the_line() -> None:
    found = problems(
        GOOD.replace(
            "    type: take_message\n",
            "    type: transfer\n    to: on_call\n    on_no_answer: message\n"
            "  message:\n    type: take_message\n",
        )
    )
    assert found == [
        "voice_flows/test.yaml:12: step 'take': to: transfer to 'on_call' needs a 'rotation'"
    ]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    found = problems(
        GOOD.replace("Europe/London", "Mars/Olympus").replace("next: take", "next: tkae")
        + "  greeting:\n    type: hangup\n"
    )
    assert [line.split(":")[1] for line in found] == ["4", "12"]


def test_yes_no_and_other_yaml_1_1_surprises_stay_as_written() -> None:
    loaded = parse_flow(
        text(
            """
            client: test-oslo
            name: Test Oslo
            numbers: [+4721000000]
            timezone: Europe/Oslo
            holidays: {country: NO}
            contacts: [{id: kari, name: Kari, phone: "+4741000000"}]
            rotation: {members: [kari], handoff: 09:30}
            steps:
              confirm:
                type: menu
                prompt: Is this an emergency?
                options:
                  - {key: 1, words: [yes, on], goto: take}
                  - {key: 2, words: [no, off], goto: take}
                default: take
              take:
                type: take_message
            """
        ),
        PATH,
    )
    menu = loaded.flow.steps["confirm"]
    assert isinstance(menu, MenuStep)
    assert [(o.key, o.words) for o in menu.options] == [("1", ["yes", "on"]), ("2", ["no", "off"])]
    assert loaded.flow.holidays.country == "NO"  # Norway, not False
    assert loaded.flow.numbers == ["+4721000000"]  # not the integer 4721000000
    assert loaded.flow.rotation is not None
    assert loaded.flow.rotation.handoff == dt.time(9, 30)  # not 570, YAML 1.1's base 60


def test_yes_still_means_true_where_the_schema_wants_a_flag() -> None:
    loaded = parse_flow(text(GOOD) + "caller_updates: no\n", PATH)
    assert loaded.flow.caller_updates is False


def test_an_empty_file_or_a_list_is_not_a_flow() -> None:
    assert problems("") == ["voice_flows/test.yaml: the file is empty"]
    assert problems("- a\n- b\n") == ["voice_flows/test.yaml:1: a flow file is a mapping of fields"]


def write(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(text(content), encoding="utf-8")
    return path


def test_two_files_claiming_one_number_or_slug_are_refused_and_the_first_one_wins(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yml", GOOD.replace("client: test-plumbing", "client: other"))
    write(tmp_path, "c.yaml", GOOD.replace('"+441134960000"', '"+441134960001"'))
    write(tmp_path, "notes.txt", "not a flow")
    loaded, found = load_flows([tmp_path])
    assert [flow.path.name for flow in loaded] == ["a.yaml"]
    assert [str(problem) for problem in found] == [
        f"{tmp_path}/b.yml:3: +441134960000 is also claimed by {tmp_path}/a.yaml (test-plumbing)",
        f"{tmp_path}/c.yaml:1: client 'test-plumbing' is also claimed by {tmp_path}/a.yaml",
    ]


def test_loading_reports_bad_files_missing_paths_and_empty_folders_and_keeps_the_good(
    tmp_path: Path,
) -> None:
    good = write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", GOOD.replace("next: take", "next: nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    loaded, found = load_flows([good, bad, good, empty, tmp_path / "missing.yaml"])
    assert loaded == [load_flow_file(good)]
    assert [(Path(p.path).name, p.line) for p in found] == [
        ("bad.yaml", 9),
        ("bad.yaml", 10),
        ("empty", 0),
        ("missing.yaml", 0),
    ]


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Café".encode("latin-1"))
    with pytest.raises(FlowFileError) as caught:
        load_flow_file(path)
    assert str(caught.value) == f"{path}: is not UTF-8 text"


def test_a_loaded_flow_compares_by_content() -> None:
    first, second = parse_flow(text(GOOD), PATH), parse_flow(text(GOOD), PATH)
    assert first == second
    assert isinstance(first, LoadedFlow)
