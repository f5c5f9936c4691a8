"""The step engine: `(flow, state, caller input, now) -> (new state, actions)`, with no I/O.

Each Twilio webhook is one turn. The engine runs through steps that need nothing from the caller
(say, branch, take message) until it reaches one that waits (a menu, a question, a recording, a
transfer, the PA queue) or ends the call. The telephony adapter renders the actions as TwiML and
the calls service stores the state, so any replica can take the next webhook.

The promise it keeps: a call never ends without a message saved or a person reached. When the caller
hangs up early, the message is saved with what was gathered, marked partial; when the flow itself
misbehaves at run time, the caller is offered a plain voicemail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.flows import understanding
from app.flows.hours import is_holiday, is_open
from app.flows.rota import who_is_on_call
from app.flows.schema import (
    AskStep,
    BranchRule,
    BranchStep,
    Condition,
    Expect,
    Flow,
    HangupStep,
    MenuStep,
    QueueStep,
    RecordStep,
    SayStep,
    TakeMessageStep,
    TransferStep,
    Urgency,
)

FALLBACK_STEP = "_voicemail"  # not a flow step: the engine's own last resort
MAX_STEPS_PER_TURN = 50
CONNECTED_STATUSES = {"completed", "answered"}

# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallState:
    """Where a call is in its flow; stored as JSON on the call row between webhooks."""

    step: str
    caller: str = ""
    attempt: int = 0
    pending: str | None = None  # an answer heard but not yet confirmed
    answers: dict[str, str] = field(default_factory=dict)
    urgency: Urgency = Urgency.routine
    recording_url: str | None = None
    recording_seconds: int | None = None
    message_taken: bool = False
    person_reached: bool = False
    ended: bool = False

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["urgency"] = self.urgency.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallState:
        """The stored state; an empty one (a call stored by a callback because the fallback
        answered it, so no flow ran) is at no step, which the flow doesn't have."""
        return cls(**{"step": "", **data, "urgency": Urgency(data.get("urgency", "routine"))})


# --- what the caller did -----------------------------------------------------------------


@dataclass(frozen=True)
class Gathered:
    """Keys pressed or words said in answer to a <Gather>."""

    digits: str | None = None
    speech: str | None = None


@dataclass(frozen=True)
class Silence:
    """A <Gather> or <Record> that timed out with nothing from the caller."""


@dataclass(frozen=True)
class Recorded:
    url: str
    seconds: int


@dataclass(frozen=True)
class DialEnded:
    status: str  # Twilio's DialCallStatus: completed, answered, busy, no-answer, failed, canceled


@dataclass(frozen=True)
class QueueEnded:
    result: str  # Twilio's QueueResult: bridged, leave, hangup, queue-full, error, ...


@dataclass(frozen=True)
class HungUp:
    """The call is over (status callback): whatever was gathered must not be lost."""


CallerInput = Gathered | Silence | Recorded | DialEnded | QueueEnded | HungUp

# --- what should happen ------------------------------------------------------------------


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Play:
    url: str


Prompt = Say | Play


@dataclass(frozen=True)
class Gather:
    prompt: tuple[Prompt, ...]
    keypad: bool = True
    speech: bool = True
    num_digits: int | None = None
    timeout: int = 6
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Record:
    max_seconds: int
    transcribe: bool


@dataclass(frozen=True)
class Dial:
    number: str
    timeout: int


@dataclass(frozen=True)
class Enqueue:
    queue: str
    hold_message: str
    hold_music: str | None
    timeout: int


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class SaveMessage:
    """Side effect for the service: save the call's message (once) with what was gathered."""

    urgency: Urgency
    answers: dict[str, str]
    outcome: str  # message | partial | connected | voicemail
    recording_url: str | None = None
    recording_seconds: int | None = None


Action = Say | Play | Gather | Record | Dial | Enqueue | Hangup | SaveMessage


@dataclass(frozen=True)
class Note:
    """A line for the call's timeline."""

    kind: str
    detail: dict[str, Any]


@dataclass
class Turn:
    state: CallState
    actions: list[Action] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def say(self, text: str | None) -> None:
        if text:
            self.actions.append(Say(text))

    def note(self, kind: str, **detail: Any) -> None:
        self.notes.append(Note(kind, detail))


# --- the engine --------------------------------------------------------------------------


def start_call(flow: Flow, caller: str, now: dt.datetime) -> Turn:
    """The first turn of a call: run from the flow's first step."""
    return _run(flow, Turn(CallState(step=flow.first_step, caller=caller)), flow.first_step, now)


def advance(flow: Flow, state: CallState, heard: CallerInput, now: dt.datetime) -> Turn:
    """The next turn: apply what the caller did to the step that was waiting for it."""
    turn = Turn(state)
    if isinstance(heard, HungUp):
        return _hang_up(turn)
    if state.ended:
        turn.actions.append(Hangup())
        return turn
    if state.step == FALLBACK_STEP:
        return _after_fallback(turn, heard)
    step = flow.steps.get(state.step)
    if step is None:  # the flow changed under a live call, or state is corrupt
        turn.note("error", reason=f"step {state.step!r} is not in the flow")
        return _fallback(turn)
    match step:
        case MenuStep():
            return _answer_menu(flow, turn, step, heard, now)
        case AskStep():
            return _answer_ask(flow, turn, step, heard, now)
        case RecordStep():
            if isinstance(heard, Recorded):
                turn.state = replace(
                    turn.state, recording_url=heard.url, recording_seconds=heard.seconds
                )
                turn.note("recorded", seconds=heard.seconds)
            return _run(flow, turn, step.next, now)
        case TransferStep():
            status = heard.status if isinstance(heard, DialEnded) else "failed"
            turn.note("transfer_ended", status=status)
            if status in CONNECTED_STATUSES:
                return _connected(turn, flow)
            return _run(flow, turn, step.on_no_answer, now)
        case QueueStep():
            result = heard.result if isinstance(heard, QueueEnded) else "error"
            turn.note("queue_ended", result=result)
            if result == "bridged":
                return _connected(turn, flow)
            if result == "hangup":
                return _hang_up(turn)
            if result == "redirected":
                # Moved out of the queue to a PA (the console): a person has the call, and
                # Twilio runs the TwiML it was moved to, not this turn's.
                turn.state = replace(turn.state, person_reached=True)
                return turn
            return _run(flow, turn, step.on_timeout, now)
    turn.note("error", reason=f"step {state.step!r} was not waiting for the caller")
    return _run(flow, turn, state.step, now)


def _run(flow: Flow, turn: Turn, target: str | None, now: dt.datetime) -> Turn:
    """Enter steps from `target` until one waits for the caller or the call ends."""
    for _ in range(MAX_STEPS_PER_TURN):
        if target is None:
            return _finish(turn, flow.goodbye)
        step = flow.steps.get(target)
        if step is None:
            turn.note("error", reason=f"no step called {target!r}")
            return _fallback(turn)
        turn.state = replace(turn.state, step=target, attempt=0, pending=None)
        turn.note("step", step=target, type=step.type)
        match step:
            case SayStep():
                turn.actions.append(Say(step.text) if step.text else Play(step.audio or ""))
                target = step.next
            case BranchStep():
                target = _branch(flow, turn.state, step, now)
            case TakeMessageStep():
                turn.state = replace(turn.state, urgency=step.urgency)
                _save(turn, "message")
                turn.say(step.say)
                target = step.next
            case HangupStep():
                return _finish(turn, step.say)
            case MenuStep():
                turn.actions.append(_menu_gather(step, (Say(step.prompt),)))
                return turn
            case AskStep():
                turn.actions.append(_ask_gather(step, (Say(step.prompt),)))
                return turn
            case RecordStep():
                turn.say(step.prompt)
                turn.actions.append(Record(step.max_seconds, step.transcribe))
                return turn
            case TransferStep():
                number = _transfer_number(flow, step, now)
                if number is None:
                    turn.note("transfer_skipped", to=step.to, reason="no number to call")
                    target = step.on_no_answer
                    continue
                turn.say(step.prompt)
                turn.actions.append(Dial(number, step.timeout))
                return turn
            case QueueStep():
                turn.actions.append(
                    Enqueue(flow.client, step.hold_message, step.hold_music, step.timeout)
                )
                return turn
    turn.note("error", reason=f"more than {MAX_STEPS_PER_TURN} steps without the caller")
    return _fallback(turn)


def _branch(flow: Flow, state: CallState, step: BranchStep, now: dt.datetime) -> str:
    for rule in step.rules:
        if _holds(flow, state, rule, now):
            return rule.goto
    return step.otherwise


def _holds(flow: Flow, state: CallState, rule: BranchRule, now: dt.datetime) -> bool:
    if rule.answer is not None:
        given = state.answers.get(rule.answer)
        if rule.equals is None:
            return given is not None
        return given is not None and given.lower() == rule.equals.lower()
    if rule.when is Condition.holiday:
        return is_holiday(flow.holidays, flow.zone, now)
    open_now = is_open(flow.hours, flow.holidays, flow.zone, now)
    return open_now if rule.when is Condition.open else not open_now


def _transfer_number(flow: Flow, step: TransferStep, now: dt.datetime) -> str | None:
    if step.to.startswith("+"):
        return step.to
    contact_id = step.to
    if step.to == "on_call":
        if flow.rotation is None:
            return None
        contact_id = who_is_on_call(flow.rotation, flow.zone, now)
    contact = flow.contact(contact_id)
    return contact.phone if contact else None


# --- answering a menu or a question ---------------------------------------------------------


def _menu_gather(step: MenuStep, prompt: tuple[Prompt, ...]) -> Gather:
    hints = tuple(w for option in step.options for w in option.words)
    return Gather(prompt, speech=bool(hints), num_digits=1, timeout=step.timeout, hints=hints)


def _answer_menu(
    flow: Flow, turn: Turn, step: MenuStep, heard: CallerInput, now: dt.datetime
) -> Turn:
    choice = _menu_choice(step, heard)
    _note_heard(turn, heard)
    if choice is None:
        return _retry(flow, turn, step, step.default, _menu_gather, now)
    option = step.options[choice]
    if step.save_as:
        value = option.value or (option.words[0] if option.words else option.key) or ""
        _keep_answer(turn, step.save_as, value)
    return _run(flow, turn, option.goto, now)


def _menu_choice(step: MenuStep, heard: CallerInput) -> int | None:
    if not isinstance(heard, Gathered):
        return None
    key = (heard.digits or "")[:1] or understanding.spoken_digits(heard.speech or "")[:1]
    said = " ".join(understanding.words(heard.speech or ""))
    for index, option in enumerate(step.options):
        if key and option.key == key:
            return index
    for index, option in enumerate(step.options):
        if any(f" {w.lower()} " in f" {said} " for w in option.words):
            return index
    return None


def _ask_gather(step: AskStep, prompt: tuple[Prompt, ...]) -> Gather:
    match step.expect:
        case Expect.yes_no:
            return Gather(prompt, num_digits=1, timeout=step.timeout, hints=("yes", "no"))
        case Expect.digits:
            return Gather(prompt, speech=False, num_digits=step.max_digits, timeout=step.timeout)
        case Expect.phone:
            return Gather(prompt, timeout=step.timeout)
    return Gather(prompt, keypad=False, timeout=step.timeout)


def _confirm_gather(step: AskStep, value: str) -> Gather:
    shown = understanding.read_back(value) if step.expect is Expect.phone else value
    text = f"I heard {shown}. If that's right, press 1 or say yes. To try again, press 2 or say no."
    return Gather((Say(text),), num_digits=1, timeout=step.timeout, hints=("yes", "no"))


def _answer_ask(
    flow: Flow, turn: Turn, step: AskStep, heard: CallerInput, now: dt.datetime
) -> Turn:
    _note_heard(turn, heard)
    state = turn.state
    if state.pending is not None:  # we read an answer back and asked "is that right?"
        verdict = (
            understanding.yes_or_no(heard.digits, heard.speech)
            if isinstance(heard, Gathered)
            else None
        )
        if verdict:
            _keep_answer(turn, step.save_as, state.pending)
            return _run(flow, turn, step.next, now)
        turn.state = replace(state, pending=None)
        return _retry(flow, turn, step, step.on_fail or step.next, _ask_gather, now)
    value = _understand(flow, step, heard)
    if value is None:
        return _retry(flow, turn, step, step.on_fail or step.next, _ask_gather, now)
    if step.confirms:
        turn.state = replace(state, pending=value)
        turn.actions.append(_confirm_gather(step, value))
        return turn
    _keep_answer(turn, step.save_as, value)
    return _run(flow, turn, step.next, now)


def _understand(flow: Flow, step: AskStep, heard: CallerInput) -> str | None:
    if not isinstance(heard, Gathered):
        return None
    text = heard.digits or heard.speech or ""
    match step.expect:
        case Expect.phone:
            return understanding.phone_number(text, understanding.region_of(flow.numbers[0]))
        case Expect.yes_no:
            verdict = understanding.yes_or_no(heard.digits, heard.speech)
            return None if verdict is None else ("yes" if verdict else "no")
        case Expect.digits:
            digits = understanding.spoken_digits(text)
            return digits or None
    return text.strip() or None


def _retry(
    flow: Flow,
    turn: Turn,
    step: MenuStep | AskStep,
    give_up_to: str,
    gather: Callable[[Any, tuple[Prompt, ...]], Gather],
    now: dt.datetime,
) -> Turn:
    """Ask again with the retry prompt, or move on after the last attempt."""
    attempt = turn.state.attempt + 1
    if attempt >= step.attempts:
        turn.note("gave_up", step=turn.state.step, attempts=attempt)
        return _run(flow, turn, give_up_to, now)
    turn.state = replace(turn.state, attempt=attempt)
    retry_prompt = step.retry_prompt if isinstance(step, MenuStep) else "Sorry, I didn't get that."
    turn.actions.append(gather(step, (Say(retry_prompt), Say(step.prompt))))
    return turn


def _note_heard(turn: Turn, heard: CallerInput) -> None:
    if isinstance(heard, Gathered):
        turn.note("heard", digits=heard.digits, speech=heard.speech)
    else:
        turn.note("silence")


def _keep_answer(turn: Turn, name: str, value: str) -> None:
    turn.state = replace(turn.state, answers={**turn.state.answers, name: value}, pending=None)
    turn.note("answer", name=name, value=value)


# --- endings -------------------------------------------------------------------------------


def _save(turn: Turn, outcome: str) -> None:
    state = turn.state
    if state.message_taken:
        return
    turn.state = replace(state, message_taken=True)
    turn.actions.append(
        SaveMessage(
            urgency=state.urgency,
            answers=dict(state.answers),
            outcome=outcome,
            recording_url=state.recording_url,
            recording_seconds=state.recording_seconds,
        )
    )


def _finish(turn: Turn, goodbye: str | None) -> Turn:
    """End the call; if the flow somehow got here without a message, save what we have."""
    if not (turn.state.message_taken or turn.state.person_reached):
        turn.note("error", reason="call ended without a message; saving what was gathered")
        _save(turn, "partial")
    turn.say(goodbye)
    turn.actions.append(Hangup())
    turn.state = replace(turn.state, ended=True)
    turn.note("ended")
    return turn


def _connected(turn: Turn, flow: Flow) -> Turn:
    turn.state = replace(turn.state, person_reached=True)
    _save(turn, "connected")
    return _finish(turn, flow.goodbye)


def _hang_up(turn: Turn) -> Turn:
    if not (turn.state.message_taken or turn.state.person_reached):
        _save(turn, "partial")
    turn.state = replace(turn.state, ended=True)
    turn.note("hung_up")
    return turn


def _fallback(turn: Turn) -> Turn:
    """Something is wrong with the flow: apologise and take a plain voicemail instead."""
    turn.state = replace(turn.state, step=FALLBACK_STEP, attempt=0, pending=None)
    turn.say(FALLBACK_PROMPT)
    turn.actions.append(Record(max_seconds=180, transcribe=True))
    return turn


FALLBACK_PROMPT = (
    "We're sorry, something went wrong on our side. Please leave your name, number and message "
    "after the tone, and we'll make sure it reaches the right person."
)


def _after_fallback(turn: Turn, heard: CallerInput) -> Turn:
    if isinstance(heard, Recorded):
        turn.state = replace(turn.state, recording_url=heard.url, recording_seconds=heard.seconds)
    _save(turn, "voicemail")
    return _finish(turn, "Thank you. Your message has been passed on. Goodbye.")
