"""The step engine as a pure function: a flow, a state, what the caller did, and a time."""

from __future__ import annotations

import datetime as dt
import textwrap

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.flows.engine import (
    FALLBACK_STEP,
    CallState,
    DialEnded,
    Enqueue,
    Gather,
    Gathered,
    Hangup,
    HungUp,
    QueueEnded,
    Record,
    Recorded,
    SaveMessage,
    Say,
    Silence,
    Turn,
    advance,
    start_call,
)
from app.flows.schema import Flow, Urgency

LONDON_THURSDAY_NIGHT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
LONDON_THURSDAY_NOON = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
CHRISTMAS_NOON = dt.datetime(2026, 12, 25, 12, 0, tzinfo=dt.UTC)

PLUMBER = """
client: test-plumbing
name: Test Plumbing
numbers: ["+441134960000"]
timezone: Europe/London
hours:
  thursday: ["08:00-17:30"]
holidays: {country: GB, subdivision: ENG}
contacts:
  - {id: sam, name: Sam, phone: "+447911123456"}
  - {id: alex, name: Alex, phone: "+447911654321"}
rotation: {members: [sam, alex]}
steps:
  greeting:
    type: say
    text: Thanks for calling Test Plumbing.
    next: hours
  hours:
    type: branch
    rules:
      - {when: holiday, goto: holiday}
      - {when: open, goto: office}
    otherwise: menu
  holiday:
    type: say
    text: We're closed for the bank holiday.
    next: menu
  office:
    type: transfer
    to: "+441134960001"
    on_no_answer: name
  menu:
    type: menu
    prompt: For an emergency press 1 or say emergency. Otherwise press 2.
    save_as: kind
    options:
      - {key: "1", words: [emergency], value: emergency, goto: engineer}
      - {key: "2", words: [message], value: routine, goto: name}
    default: name
  engineer:
    type: transfer
    to: on_call
    on_no_answer: name
  name:
    type: ask
    prompt: What's your name?
    save_as: name
    next: number
  number:
    type: ask
    prompt: What number can we call you back on?
    save_as: callback
    expect: phone
    next: problem
  problem:
    type: record
    prompt: Please describe the problem after the tone.
    next: taken
  taken:
    type: take_message
    urgency: urgent
    next: bye
  bye:
    type: hangup
    say: Goodbye.
"""


def flow_from(snippet: str) -> Flow:
    return Flow.model_validate(yaml.safe_load(textwrap.dedent(snippet)))


PLUMBING = flow_from(PLUMBER)


def spoken(turn: Turn) -> list[str]:
    """Everything the caller hears this turn, prompts inside a Gather included."""
    out: list[str] = []
    for action in turn.actions:
        if isinstance(action, Say):
            out.append(action.text)
        elif isinstance(action, Gather):
            out += [p.text for p in action.prompt if isinstance(p, Say)]
    return out


def saved(turn: Turn) -> list[SaveMessage]:
    return [a for a in turn.actions if isinstance(a, SaveMessage)]


def test_out_of_hours_caller_hears_the_greeting_and_the_menu() -> None:
    turn = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT)
    assert spoken(turn)[0] == "Thanks for calling Test Plumbing."
    assert isinstance(turn.actions[-1], Gather)
    assert turn.state.step == "menu"


def test_in_hours_caller_is_put_through_to_the_office() -> None:
    turn = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NOON)
    assert turn.state.step == "office"
    assert turn.actions[-1].number == "+441134960001"  # type: ignore[union-attr]


def test_christmas_day_caller_hears_the_holiday_message_even_at_noon() -> None:
    turn = start_call(PLUMBING, "+447700900001", CHRISTMAS_NOON)
    assert "We're closed for the bank holiday." in spoken(turn)
    assert turn.state.step == "menu"


def test_emergency_by_keypad_dials_whoever_is_on_call() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    turn = advance(PLUMBING, state, Gathered(digits="1"), LONDON_THURSDAY_NIGHT)
    assert turn.state.answers == {"kind": "emergency"}
    dial = turn.actions[-1]
    assert dial.number in {"+447911123456", "+447911654321"}  # type: ignore[union-attr]


def test_emergency_by_speech_picks_the_same_option() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    turn = advance(PLUMBING, state, Gathered(speech="It's an emergency!"), LONDON_THURSDAY_NIGHT)
    assert turn.state.step == "engineer"


def test_a_transfer_nobody_answers_falls_back_to_taking_a_message() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    state = advance(PLUMBING, state, Gathered(digits="1"), LONDON_THURSDAY_NIGHT).state
    turn = advance(PLUMBING, state, DialEnded("no-answer"), LONDON_THURSDAY_NIGHT)
    assert turn.state.step == "name"
    assert "What's your name?" in spoken(turn)


def test_an_answered_transfer_ends_the_call_with_a_connected_record() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    state = advance(PLUMBING, state, Gathered(digits="1"), LONDON_THURSDAY_NIGHT).state
    turn = advance(PLUMBING, state, DialEnded("completed"), LONDON_THURSDAY_NIGHT)
    assert [s.outcome for s in saved(turn)] == ["connected"]
    assert isinstance(turn.actions[-1], Hangup)
    assert turn.state.person_reached


def test_silence_at_the_menu_repeats_it_then_takes_a_message() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    retry = advance(PLUMBING, state, Silence(), LONDON_THURSDAY_NIGHT)
    assert spoken(retry)[0] == "Sorry, I didn't catch that."
    assert retry.state.step == "menu"
    gave_up = advance(PLUMBING, retry.state, Silence(), LONDON_THURSDAY_NIGHT)
    assert gave_up.state.step == "name"


def test_a_callback_number_is_read_back_digit_by_digit_and_kept_when_confirmed() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    state = advance(PLUMBING, state, Gathered(digits="2"), LONDON_THURSDAY_NIGHT).state
    state = advance(PLUMBING, state, Gathered(speech="Sam Taylor"), LONDON_THURSDAY_NIGHT).state
    heard = advance(
        PLUMBING, state, Gathered(speech="oh seven nine one one one two three four five six"),
        LONDON_THURSDAY_NIGHT,
    )  # fmt: skip
    assert spoken(heard) == [
        "I heard 0 7 9, 1 1 1, 2 3 4, 5 6. If that's right, press 1 or say yes. "
        "To try again, press 2 or say no."
    ]
    confirmed = advance(PLUMBING, heard.state, Gathered(speech="yes"), LONDON_THURSDAY_NIGHT)
    assert confirmed.state.answers["callback"] == "+447911123456"
    assert isinstance(confirmed.actions[-1], Record)


def test_a_wrong_read_back_asks_for_the_number_again() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    for heard in (Gathered(digits="2"), Gathered(speech="Sam"), Gathered(digits="07911123456")):
        state = advance(PLUMBING, state, heard, LONDON_THURSDAY_NIGHT).state
    turn = advance(PLUMBING, state, Gathered(digits="2"), LONDON_THURSDAY_NIGHT)
    assert turn.state.step == "number"
    assert "callback" not in turn.state.answers
    assert "What number can we call you back on?" in spoken(turn)


def test_a_whole_message_is_saved_once_with_answers_recording_and_urgency() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    for heard in (
        Gathered(digits="2"),
        Gathered(speech="Sam Taylor"),
        Gathered(digits="07911123456"),
        Gathered(digits="1"),
    ):
        state = advance(PLUMBING, state, heard, LONDON_THURSDAY_NIGHT).state
    turn = advance(
        PLUMBING, state, Recorded("https://api.twilio.com/rec/RE1", 14), LONDON_THURSDAY_NIGHT
    )
    (message,) = saved(turn)
    assert message.outcome == "message"
    assert message.urgency is Urgency.urgent
    assert message.answers == {"kind": "routine", "name": "Sam Taylor", "callback": "+447911123456"}
    assert message.recording_url == "https://api.twilio.com/rec/RE1"
    assert spoken(turn)[-1] == "Goodbye."
    assert isinstance(turn.actions[-1], Hangup)
    assert saved(advance(PLUMBING, turn.state, HungUp(), LONDON_THURSDAY_NIGHT)) == []


def test_hanging_up_mid_flow_saves_what_was_gathered_as_partial() -> None:
    state = start_call(PLUMBING, "+447700900001", LONDON_THURSDAY_NIGHT).state
    state = advance(PLUMBING, state, Gathered(digits="2"), LONDON_THURSDAY_NIGHT).state
    state = advance(PLUMBING, state, Gathered(speech="Sam Taylor"), LONDON_THURSDAY_NIGHT).state
    (message,) = saved(advance(PLUMBING, state, HungUp(), LONDON_THURSDAY_NIGHT))
    assert message.outcome == "partial"
    assert message.answers == {"kind": "routine", "name": "Sam Taylor"}


def test_a_step_missing_from_the_flow_offers_a_plain_voicemail() -> None:
    turn = advance(PLUMBING, CallState(step="gone"), Gathered(digits="1"), LONDON_THURSDAY_NIGHT)
    assert turn.state.step == FALLBACK_STEP
    assert isinstance(turn.actions[-1], Record)
    done = advance(PLUMBING, turn.state, Recorded("https://r", 9), LONDON_THURSDAY_NIGHT)
    assert [s.outcome for s in saved(done)] == ["voicemail"]


QUEUE = """
client: test-law
name: Test Law
numbers: ["+61255501234"]
timezone: Australia/Sydney
steps:
  pa:
    type: queue
    timeout: 60
    on_timeout: voicemail
  voicemail:
    type: record
    prompt: Please leave a message.
    next: taken
  taken:
    type: take_message
"""


def test_the_pa_queue_falls_back_to_a_voicemail_when_nobody_picks_up() -> None:
    flow = flow_from(QUEUE)
    turn = start_call(flow, "+61400000000", LONDON_THURSDAY_NIGHT)
    assert isinstance(turn.actions[-1], Enqueue)
    left = advance(flow, turn.state, QueueEnded("leave"), LONDON_THURSDAY_NIGHT)
    assert isinstance(left.actions[-1], Record)


def test_a_caller_who_hangs_up_in_the_queue_leaves_a_partial_message_and_no_more_steps() -> None:
    flow = flow_from(QUEUE)
    state = start_call(flow, "+61400000000", LONDON_THURSDAY_NIGHT).state
    turn = advance(flow, state, QueueEnded("hangup"), LONDON_THURSDAY_NIGHT)
    assert [s.outcome for s in saved(turn)] == ["partial"]
    assert turn.state.ended
    assert not [a for a in turn.actions if isinstance(a, Record)]


def test_a_caller_taken_out_of_the_queue_by_a_pa_counts_as_a_person_reached() -> None:
    flow = flow_from(QUEUE)
    state = start_call(flow, "+61400000000", LONDON_THURSDAY_NIGHT).state
    turn = advance(flow, state, QueueEnded("redirected"), LONDON_THURSDAY_NIGHT)
    assert turn.actions == []  # Twilio runs the TwiML the caller was moved to
    assert turn.state.person_reached
    hung_up = advance(flow, turn.state, HungUp(), LONDON_THURSDAY_NIGHT)
    assert saved(hung_up) == [], "the PA takes the message, not the hang-up"


def test_a_take_message_without_next_says_the_flows_goodbye() -> None:
    flow = flow_from(QUEUE)
    state = start_call(flow, "+61400000000", LONDON_THURSDAY_NIGHT).state
    state = advance(flow, state, QueueEnded("leave"), LONDON_THURSDAY_NIGHT).state
    turn = advance(flow, state, Recorded("https://r", 3), LONDON_THURSDAY_NIGHT)
    assert spoken(turn)[-1] == "Thank you for calling. Goodbye."


caller_input = st.one_of(
    st.builds(Gathered, digits=st.sampled_from(["1", "2", "3", "9", "#", "07911123456", None])),
    st.builds(Gathered, speech=st.sampled_from(["yes", "no", "emergency", "", "Sam", None])),
    st.just(Silence()),
    st.builds(Recorded, url=st.just("https://r"), seconds=st.integers(0, 300)),
    st.builds(DialEnded, status=st.sampled_from(["completed", "no-answer", "busy", "failed"])),
    st.builds(QueueEnded, result=st.sampled_from(["bridged", "leave", "hangup", "error"])),
)


@settings(max_examples=300, deadline=None)
@given(
    inputs=st.lists(caller_input, max_size=40),
    at=st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(dt.UTC),
    ),
)
def test_any_caller_input_ends_the_call_with_a_message_or_a_person(inputs, at) -> None:
    turn = start_call(PLUMBING, "+447700900001", at)
    messages = saved(turn)
    for heard in inputs:
        if turn.state.ended:
            break
        turn = advance(PLUMBING, turn.state, heard, at)
        messages += saved(turn)
        assert turn.actions, "every turn gives Twilio something to do"
    # Whatever happened, the call ends (hang-up at worst) with exactly one message kept.
    turn = advance(PLUMBING, turn.state, HungUp(), at)
    messages += saved(turn)
    assert turn.state.ended
    assert len(messages) == 1
