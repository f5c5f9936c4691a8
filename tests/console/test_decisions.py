"""The console's decisions, as pure functions of plain values: the answer phrase, the queue's
order, the message form, and the supervisors' figures."""

from __future__ import annotations

import datetime as dt
import textwrap
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from app.console.board import EntryRow, duration, mask_caller, queue_lines
from app.console.greeting import answer_phrase, part_of_day
from app.console.script import Kind, check, prefilled, questions
from app.console.stats import Wait, percentile, today_by_client
from app.flows.loader import parse_flow
from app.flows.schema import Console, Urgency

SYDNEY = ZoneInfo("Australia/Sydney")
LONDON = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)  # 23:00 in Sydney, 12:00 in London


# --- the answer phrase -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "part"),
    [("04:59", "evening"), ("05:00", "morning"), ("11:59", "morning"), ("12:00", "afternoon"),
     ("17:59", "afternoon"), ("18:00", "evening"), ("02:00", "evening")],
)  # fmt: skip
def test_the_part_of_the_day_a_caller_is_greeted_for(local: str, part: str) -> None:
    assert part_of_day(dt.time.fromisoformat(local)) == part


def test_the_answer_phrase_is_in_the_clients_time_of_day_with_the_pas_first_name() -> None:
    template = Console().answer_phrase
    assert answer_phrase(template, "Acme Plumbing", "Sam Taylor", SYDNEY, NOW) == (
        "Good evening, Acme Plumbing, Sam speaking."
    )
    assert answer_phrase(template, "Acme Plumbing", "Sam Taylor", LONDON, NOW) == (
        "Good afternoon, Acme Plumbing, Sam speaking."
    )


def test_a_flow_file_with_an_unknown_placeholder_in_its_answer_phrase_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"unknown placeholder \{name\}"):
        Console(answer_phrase="Hello, {name} here")


# --- the queue -----------------------------------------------------------------------------------


def entry(id: int, minutes_ago: int, urgency: str = "routine", **answers: str) -> EntryRow:
    return EntryRow(
        id=id, client="Harbour Law", client_slug="harbour-law", caller="+61491570999",
        answers=answers, urgency=urgency, status="waiting",
        enqueued_at=NOW - dt.timedelta(minutes=minutes_ago), pa_id=None, pa_name=None,
    )  # fmt: skip


def test_the_queue_puts_urgent_callers_first_then_the_longest_waiting() -> None:
    lines = queue_lines(
        [entry(1, 10), entry(2, 2, caller_is="urgent"), entry(3, 20), entry(4, 1, "emergency")],
        NOW,
    )
    assert [line.entry_id for line in lines] == [4, 2, 3, 1]
    assert [line.position for line in lines] == [1, 2, 3, 4]
    assert lines[1].said == "Caller is: urgent"
    assert lines[2].waited_seconds == 20 * 60


def test_callers_are_masked_in_the_queue() -> None:
    assert mask_caller("+61491570999") == "+61 ••• 999"
    assert "491570" not in queue_lines([entry(1, 1)], NOW)[0].caller


def test_durations_read_as_a_clock() -> None:
    assert [duration(s) for s in (5, 65, 3723)] == ["0:05", "1:05", "1:02:03"]


# --- the message form ----------------------------------------------------------------------------

FLOW = parse_flow(
    textwrap.dedent("""
        client: form-test
        name: Form Test
        numbers: ["+61255501234"]
        timezone: Australia/Sydney
        steps:
          kind:
            type: menu
            prompt: New or existing?
            save_as: caller_is
            options:
              - {key: "1", value: existing, goto: name}
              - {key: "2", words: [new], goto: name}
            default: name
          name: {type: ask, prompt: "Your name?", save_as: name, next: phone}
          phone: {type: ask, prompt: "Your number?", save_as: callback, expect: phone, next: ok}
          ok: {type: ask, prompt: "Is it urgent?", save_as: urgent, expect: yes_no, next: again}
          again: {type: ask, prompt: "Your name again?", save_as: name, next: message}
          message: {type: record, prompt: After the tone..., next: done}
          done: {type: take_message}
    """),
    "form.yaml",
).flow


def test_the_form_asks_the_flows_questions_once_each_in_order() -> None:
    form = questions(FLOW)
    assert [(q.name, q.kind) for q in form] == [
        ("caller_is", Kind.choice), ("name", Kind.text), ("callback", Kind.phone),
        ("urgent", Kind.choice), ("message", Kind.long_text),
    ]  # fmt: skip
    assert form[0].choices == ("existing", "new")
    assert form[2].hint == "Your number?"


def test_a_callback_number_is_checked_and_written_as_the_flow_writes_it() -> None:
    form = questions(FLOW)
    good = check(form, {"callback": "0491 570 156", "message": "Hi"}, "AU", "urgent")
    assert good.ok
    assert good.answers == {"callback": "+61491570156", "message": "Hi"}
    assert good.urgency is Urgency.urgent
    bad = check(form, {"callback": "12345", "urgent": "maybe"}, "AU", "routine")
    assert set(bad.problems) == {"callback", "urgent"}


def test_an_empty_form_or_an_unknown_urgency_is_refused() -> None:
    form = questions(FLOW)
    assert "message" in check(form, {}, "AU", "routine").problems
    assert "urgency" in check(form, {"message": "Hi"}, "AU", "whenever").problems


def test_the_form_starts_with_what_the_caller_said() -> None:
    assert prefilled(questions(FLOW), {"caller_is": "new", "other": "x"}) == {"caller_is": "new"}


# --- the supervisors' figures --------------------------------------------------------------------


def test_percentiles_are_values_that_occurred() -> None:
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 90)) == (5.0, 9.0)
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0


def test_todays_figures_count_each_clients_own_day() -> None:
    def wait(client: str, zone: ZoneInfo, hours_ago: float, status: str, answered_in: int = 0):
        at = NOW - dt.timedelta(hours=hours_ago)
        answered = at + dt.timedelta(seconds=answered_in) if status == "answered" else None
        return Wait(client, zone, at, status, answered)

    days = today_by_client(
        [
            wait("Harbour Law", SYDNEY, 1, "answered", 20),
            wait("Harbour Law", SYDNEY, 2, "answered", 40),
            wait("Harbour Law", SYDNEY, 3, "abandoned"),
            wait("Harbour Law", SYDNEY, 23.5, "answered", 999),  # yesterday in Sydney
            wait("Acme", LONDON, 11, "timed_out"),  # 01:00 today in London
        ],
        NOW,
    )
    harbour, acme = days[1], days[0]
    assert (harbour.queued, harbour.answered, harbour.abandoned) == (3, 2, 1)
    assert (harbour.p50_seconds, harbour.p90_seconds) == (20.0, 40.0)
    assert (acme.client, acme.timed_out, acme.p50_seconds) == ("Acme", 1, None)
