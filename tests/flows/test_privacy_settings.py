"""Privacy mode in a flow file, as `nightdesk flows check` reads it: the PIN is written as its
hash, a contact may have a PIN of their own, and a mistake names its line without echoing the
PIN."""

from __future__ import annotations

import pytest

from app.flows.check import check_flow
from app.flows.loader import FlowFileError, parse_flow
from app.flows.pins import hash_pin, pin_matches
from tests.conftest import ROOT
from tests.support.cli import nightdesk

PATH = "voice_flows/test.yaml"
CLIENT_PIN, SAMS_PIN = hash_pin("2468"), hash_pin("1357")
CLINIC = f"""
client: test-clinic
name: Test Clinic
numbers: ["+441134960000"]
timezone: Europe/London
contacts:
  - {{id: sam, name: Sam, phone: "+441134960501", pin: "{SAMS_PIN}"}}
  - {{id: alex, name: Alex, phone: "+441134960502"}}
privacy:
  pin: "{CLIENT_PIN}"
steps:
  take:
    type: take_message
"""


def problems(text: str) -> list[str]:
    with pytest.raises(FlowFileError) as caught:
        parse_flow(text, PATH)
    return [str(problem) for problem in caught.value.problems]


def test_privacy_mode_is_on_with_the_clients_pin_and_a_contacts_own() -> None:
    flow = parse_flow(CLINIC, PATH).flow

    assert flow.private
    assert flow.pin_for("sam") == SAMS_PIN
    assert flow.pin_for("alex") == CLIENT_PIN
    assert flow.pin_for(None) == CLIENT_PIN  # a number not among the contacts
    assert check_flow(flow) == []


def test_without_privacy_no_pin_is_asked() -> None:
    text = CLINIC.replace(f'privacy:\n  pin: "{CLIENT_PIN}"\n', "").replace(
        f', pin: "{SAMS_PIN}"', ""
    )
    flow = parse_flow(text, PATH).flow
    assert not flow.private
    assert flow.pin_for("sam") is None


def test_a_pin_written_as_itself_is_refused_on_its_line_without_repeating_it() -> None:
    found = problems(CLINIC.replace(f'pin: "{CLIENT_PIN}"', 'pin: "482915"'))

    assert found == [
        f"{PATH}:10: privacy.pin: write the PIN's hash, not the PIN: run `nightdesk flows pin` "
        "and paste its line"
    ]
    assert "482915" not in found[0]


def test_a_contacts_pin_without_privacy_mode_is_a_mistake() -> None:
    found = problems(CLINIC.replace(f'privacy:\n  pin: "{CLIENT_PIN}"\n', ""))

    assert found == [
        f"{PATH}:7: contacts[0].pin: a PIN is asked for only in privacy mode: add 'privacy:' "
        "with a pin"
    ]


def test_the_demo_medical_practice_is_in_privacy_mode_with_the_demo_pin() -> None:
    text = (ROOT / "voice_flows/riverside-medical.yaml").read_text()
    flow = parse_flow(text, PATH).flow

    assert flow.private
    assert pin_matches("2468", flow.pin_for("dr_okafor") or "")
    assert "pin: 2468" not in text


def test_flows_pin_prints_the_line_a_flow_file_takes() -> None:
    code, output = nightdesk("flows", "pin", stdin="2468\n")

    assert code == 0
    [line] = output.splitlines()
    assert pin_matches("2468", line)
    assert nightdesk("flows", "pin", stdin="24\n") == (
        2,
        "nightdesk: a PIN is 4 to 8 digits, entered on the phone's keypad\n",
    )
