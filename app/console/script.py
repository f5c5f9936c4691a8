"""The client's script as a message form: the same questions as its flow asks callers, checked
the same way (a phone number becomes +E.164 or is refused, yes/no is yes or no). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from app.flows import understanding
from app.flows.schema import AskStep, Expect, Flow, MenuStep, RecordStep, Urgency

MESSAGE = "message"  # the field a flow's recording stands for: what the caller wants
MAX_LENGTH = 2000


class Kind(StrEnum):
    text = "text"
    phone = "phone"
    choice = "choice"
    digits = "digits"
    long_text = "long_text"


@dataclass(frozen=True)
class Question:
    """One field of the form: an answer name from the flow, and how to ask and check it."""

    name: str
    label: str
    hint: str  # what the flow asks the caller, so the PA asks the same
    kind: Kind
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checked:
    """A submitted form: the answers as the flow would have saved them, and any problems by
    field, said so a PA knows what to fix."""

    answers: dict[str, str]
    urgency: Urgency
    problems: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.problems


def questions(flow: Flow) -> list[Question]:
    """The flow's questions in the order its steps are written, each answer name once: its
    menus that save an answer, its ask steps, and its recording as the message itself."""
    found: dict[str, Question] = {}
    for step in flow.steps.values():
        match step:
            case MenuStep(save_as=str(name)) if name not in found:
                values = tuple(dict.fromkeys(_option_value(o) for o in step.options))
                found[name] = Question(name, _label(name), step.prompt, Kind.choice, values)
            case AskStep() if step.save_as not in found:
                found[step.save_as] = _ask(step)
            case RecordStep() if MESSAGE not in found:
                found[MESSAGE] = Question(MESSAGE, "Message", step.prompt, Kind.long_text)
    if MESSAGE not in found:
        found[MESSAGE] = Question(MESSAGE, "Message", "What the caller wants", Kind.long_text)
    return list(found.values())


def check(
    form: list[Question], submitted: Mapping[str, str], region: str | None, urgency: str
) -> Checked:
    """The answers a PA typed, checked as the flow checks a caller's; empty fields are left out."""
    answers: dict[str, str] = {}
    problems: dict[str, str] = {}
    for question in form:
        text = submitted.get(question.name, "").strip()
        if not text:
            continue
        if len(text) > MAX_LENGTH:
            problems[question.name] = f"Keep it under {MAX_LENGTH} characters."
            continue
        value, problem = _understood(question, text, region)
        if problem:
            problems[question.name] = problem
        else:
            answers[question.name] = value
    try:
        level = Urgency(urgency)
    except ValueError:
        problems["urgency"] = "Choose routine, urgent or emergency."
        level = Urgency.routine
    if not answers and not problems:
        problems[MESSAGE] = "Write down at least what the caller wants."
    return Checked(answers, level, problems)


def prefilled(form: list[Question], answers: Mapping[str, Any]) -> dict[str, str]:
    """The form's starting values: what the caller already said in the flow."""
    return {q.name: str(answers[q.name]) for q in form if answers.get(q.name) is not None}


def _understood(question: Question, text: str, region: str | None) -> tuple[str, str | None]:
    match question.kind:
        case Kind.phone:
            number = understanding.phone_number(text, region)
            if number is None:
                return text, "That isn't a phone number we can call back: check the digits."
            return number, None
        case Kind.choice if question.choices and text not in question.choices:
            return text, f"Choose one of: {', '.join(question.choices)}."
        case Kind.digits:
            digits = understanding.spoken_digits(text)
            return (digits, None) if digits else (text, "Enter digits only.")
    return text, None


def _ask(step: AskStep) -> Question:
    match step.expect:
        case Expect.phone:
            return Question(step.save_as, _label(step.save_as), step.prompt, Kind.phone)
        case Expect.yes_no:
            return Question(
                step.save_as, _label(step.save_as), step.prompt, Kind.choice, ("yes", "no")
            )
        case Expect.digits:
            return Question(step.save_as, _label(step.save_as), step.prompt, Kind.digits)
    return Question(step.save_as, _label(step.save_as), step.prompt, Kind.text)


def _option_value(option: Any) -> str:
    """What a menu option saves (as the engine saves it)."""
    return str(option.value or (option.words[0] if option.words else option.key) or "")


def _label(name: str) -> str:
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
