"""The whole-flow checks behind `nightdesk flows check`, on flows built from small YAML snippets."""

from __future__ import annotations

import textwrap

import yaml

from app.flows.check import Problem, check_flow, most_menus_before_message
from app.flows.schema import Flow

HEAD = """
client: test-plumbing
name: Test Plumbing
numbers: ["+441134960000"]
timezone: Europe/London
contacts:
  - {id: sam, name: Sam, phone: "+441134960501"}
  - {id: alex, name: Alex, phone: "+441134960502"}
  - {id: office, name: Office, email: office@example.com, channels: [email]}
rotation: {members: [sam, alex]}
"""

TAKE_MESSAGE = """
name:
  type: ask
  prompt: Your name?
  save_as: name
  next: message
message:
  type: record
  prompt: Your message after the tone.
  next: take
take:
  type: take_message
"""


def flow(*steps: str, top: str = "", head: str = HEAD) -> Flow:
    """A flow from the shared head, some top-level fields and snippets of steps."""
    body = "".join(textwrap.indent(textwrap.dedent(part), "  ") for part in steps)
    return Flow.model_validate(yaml.safe_load(head + textwrap.dedent(top) + "steps:\n" + body))


def problems(*steps: str, top: str = "", head: str = HEAD) -> list[Problem]:
    return check_flow(flow(*steps, top=top, head=head))


def test_a_flow_that_always_takes_a_message_has_no_problems() -> None:
    assert problems(TAKE_MESSAGE) == []


def test_a_typo_in_a_step_target_is_named_with_the_nearest_step() -> None:
    found = problems(
        """
          greeting: {type: say, text: Hello, next: nmae}
        """,
        TAKE_MESSAGE,
    )
    assert Problem("greeting", ("next",), "unknown step 'nmae' (did you mean 'name'?)") in found


def test_an_unknown_menu_option_target_names_the_option() -> None:
    found = problems(
        """
          menu:
            type: menu
            prompt: Press 1.
            options: [{key: "1", goto: name}, {key: "2", goto: nowhere}]
            default: name
        """,
        TAKE_MESSAGE,
    )
    assert [(p.step, p.field) for p in found] == [("menu", ("options", 1, "goto"))]


def test_an_unknown_start_is_reported_once() -> None:
    found = problems(TAKE_MESSAGE, top="start: begin\n")
    assert found == [Problem(None, ("start",), "unknown step 'begin'")]


def test_a_step_nothing_leads_to_is_unreachable() -> None:
    found = problems(TAKE_MESSAGE, "orphan: {type: hangup}\n")
    assert found == [Problem("orphan", (), "no path from the start ('name') reaches it")]


def test_a_loop_the_caller_can_never_leave_is_reported_once() -> None:
    found = problems(
        """
          welcome: {type: say, text: Hello, next: menu}
          menu:
            type: menu
            prompt: Press 1 to hear this again.
            options: [{key: "1", goto: again}]
            default: menu
          again: {type: say, text: Once more., next: menu}
        """
    )
    assert len(found) == 1
    assert found[0].step == "menu"
    assert "callers can never leave 'menu', 'again'" in found[0].message


def test_a_hangup_reached_without_a_message_names_the_hangup_and_the_route() -> None:
    found = problems(
        """
          menu:
            type: menu
            prompt: Press 1 to leave a message.
            options: [{key: "1", goto: name}]
            default: bye
          bye: {type: hangup, say: Sorry we missed you.}
        """,
        TAKE_MESSAGE,
    )
    assert len(found) == 1
    assert found[0].step == "bye"
    assert "without leaving a message or reaching anyone (menu → bye)" in found[0].message


def test_a_transfer_that_connects_counts_but_its_no_answer_path_still_takes_a_message() -> None:
    good = problems(
        """
          engineer: {type: transfer, to: on_call, on_no_answer: name}
        """,
        TAKE_MESSAGE,
    )
    bad = problems(
        """
          engineer: {type: transfer, to: on_call, on_no_answer: bye}
          bye: {type: hangup}
        """
    )
    assert good == []
    assert [p.step for p in bad] == ["bye"]


def test_a_hangup_after_the_message_is_taken_is_fine() -> None:
    found = problems(
        """
          take: {type: take_message, say: Thanks., next: bye}
          bye: {type: hangup}
        """
    )
    assert found == []


def test_transfer_to_on_call_needs_a_rotation() -> None:
    head = HEAD.replace("rotation: {members: [sam, alex]}\n", "")
    found = problems(
        """
          engineer: {type: transfer, to: on_call, on_no_answer: take}
          take: {type: take_message}
        """,
        head=head,
    )
    assert found == [Problem("engineer", ("to",), "transfer to 'on_call' needs a 'rotation'")]


def test_transfer_targets_must_be_a_contact_with_a_phone_or_a_valid_number() -> None:
    found = problems(
        """
          a: {type: transfer, to: sma, on_no_answer: b}
          b: {type: transfer, to: office, on_no_answer: c}
          c: {type: transfer, to: "+4411349600", on_no_answer: d}
          d: {type: transfer, to: "+441134960123", on_no_answer: take}
          take: {type: take_message}
        """
    )
    assert [(p.step, p.message.split(" (")[0].split(";")[0]) for p in found] == [
        ("a", "unknown contact 'sma'"),
        ("b", "contact 'office' has no phone to transfer to"),
        ("c", "'+4411349600' is not a valid phone number"),
    ]


def test_rotation_members_and_override_contacts_must_be_contacts_with_phones() -> None:
    head = HEAD.replace(
        "rotation: {members: [sam, alex]}",
        """rotation:
  members: [sam, office, jo]
  overrides: [{contact: alx, start: 2026-12-24T18:00, end: 2026-12-27T09:00}]""",
    )
    found = problems(TAKE_MESSAGE, head=head)
    assert [(p.field, p.message) for p in found] == [
        (("rotation", "members", 1), "contact 'office' is on call but has no phone"),
        (("rotation", "members", 2), "unknown contact 'jo'"),
        (("rotation", "overrides", 0, "contact"), "unknown contact 'alx' (did you mean 'alex'?)"),
    ]


def test_escalation_names_and_fallbacks_must_be_contacts() -> None:
    found = problems(
        TAKE_MESSAGE,
        top="""
        escalation:
          steps: [{notify: on_call}, {notify: everyone}, {notify: ofice}]
          fallback: office
        escalation_by_urgency:
          emergency: {steps: [{notify: sam}], fallback: boss}
        """,
    )
    assert [p.field for p in found] == [
        ("escalation", "steps", 2, "notify"),
        ("escalation_by_urgency", "emergency", "fallback"),
    ]


def test_a_branch_on_an_answer_nobody_saves_lists_the_saved_answers() -> None:
    found = problems(
        """
          which:
            type: branch
            rules: [{answer: reason, equals: emergency, goto: name}]
            otherwise: name
        """,
        TAKE_MESSAGE,
    )
    assert found == [
        Problem(
            "which",
            ("rules", 0, "answer"),
            "no ask or menu step saves an answer called 'reason' (saved answers: name)",
        )
    ]


def test_an_opening_window_that_closes_when_it_opens_is_refused_but_a_whole_day_is_fine() -> None:
    found = problems(
        TAKE_MESSAGE,
        top="""
        hours:
          monday: ["09:00-09:00"]
          tuesday: ["00:00-24:00"]
        """,
    )
    assert [(p.field, p.message.split(";")[0]) for p in found] == [
        (("hours", "monday", 0), "09:00-09:00 opens and closes at the same time")
    ]


def test_a_number_or_contact_listed_twice_is_reported() -> None:
    head = (
        HEAD.replace('["+441134960000"]', '["+441134960000", "+441134960000"]')
        .replace("  - {id: alex, name: Alex", "  - {id: sam, name: Alex")
        .replace("members: [sam, alex]", "members: [sam]")
    )
    found = problems(TAKE_MESSAGE, head=head)
    assert [p.field for p in found] == [("numbers", 1), ("contacts", 1, "id")]


def test_menus_before_a_message_count_the_longest_path_and_stop_at_the_first_question() -> None:
    two_menus = flow(
        """
          first:
            type: menu
            prompt: Press 1 for sales, 2 for service.
            options: [{key: "1", goto: name}, {key: "2", goto: second}]
            default: first
          second:
            type: menu
            prompt: Press 1 for repairs, 9 to go back.
            options: [{key: "1", goto: name}, {key: "9", goto: first}]
            default: name
        """,
        TAKE_MESSAGE,
        """
        after:
          type: menu
          prompt: Never counted, it comes after a question.
          options: [{key: "1", goto: take}]
          default: take
        """,
    )
    assert most_menus_before_message(two_menus) == 2
    assert most_menus_before_message(flow(TAKE_MESSAGE)) == 0


def test_summary_recipients_are_emails_or_contacts_who_have_one() -> None:
    top = "summary:\n  at: '07:30'\n  recipients: [office, sam, nobody, owner@example.com]\n"
    found = problems(TAKE_MESSAGE, top=top)
    assert [p.message for p in found] == [
        "contact 'sam' has no email for the summary",
        "unknown contact 'nobody'; or write an email address",
    ]
    assert [p.field for p in found] == [("summary", "recipients", 1), ("summary", "recipients", 2)]


def test_a_client_with_no_opening_hours_says_when_its_summary_goes() -> None:
    found = problems(TAKE_MESSAGE, top="summary: {recipients: [office]}\n")
    assert [p.field for p in found] == [("summary",)]
    assert problems(TAKE_MESSAGE, top="summary: {at: '07:30', recipients: [office]}\n") == []


def test_a_call_back_promised_before_the_first_contact_has_had_time_to_answer_is_refused() -> None:
    found = problems(
        TAKE_MESSAGE,
        top="""
        escalation:
          steps: [{notify: on_call, wait_minutes: 15}]
          callback_minutes: 10
        escalation_by_urgency:
          emergency: {steps: [{notify: sam, wait_minutes: 5}], callback_minutes: 30}
        """,
    )
    assert [p.field for p in found] == [("escalation", "callback_minutes")]
    assert "promise at least 15" in found[0].message
