"""How a valid flow's steps fit together: the checks behind `nightdesk flows check`.

The schema checks each value on its own; this module checks the flow as a whole, with no I/O:
targets that exist, steps that can be reached and left, names that point at real contacts, and
the answering service's promise that no call ends without a message taken or a person reached.
The engine saves a partial message if a flow breaks that promise, but that is a safety net, so a
flow that relies on it is reported here.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from difflib import get_close_matches

import phonenumbers

from app.flows.schema import (
    AnyStep,
    AskStep,
    BranchStep,
    EscalationPolicy,
    Flow,
    HangupStep,
    MenuStep,
    QueueStep,
    RecordStep,
    SayStep,
    TakeMessageStep,
    TransferStep,
)

FieldPath = tuple[str | int, ...]

# Steps where the call can stop: a message is taken, a person may answer, or the caller is let go.
ENDINGS = (HangupStep, TakeMessageStep, TransferStep, QueueStep)
# Steps where the caller starts leaving a message or may reach a person (for the menu count).
HELP_STARTS = (AskStep, RecordStep, TakeMessageStep, TransferStep, QueueStep)
MIDNIGHT = dt.time(0, 0)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow: `field` is inside the step, or from the top without one."""

    step: str | None
    field: FieldPath
    message: str


def check_flow(flow: Flow) -> list[Problem]:
    """Every problem with how the flow's steps and names fit together (empty when it is sound)."""
    return [
        *_unknown_targets(flow),
        *_unreachable_steps(flow),
        *_inescapable_loops(flow),
        *_endings_without_a_message(flow),
        *_transfer_targets(flow),
        *_summary_recipients(flow),
        *_rotation_contacts(flow),
        *_escalation_contacts(flow),
        *_answer_branches(flow),
        *_empty_hours(flow),
        *_duplicates(flow),
        *_pins_without_privacy(flow),
    ]


def most_menus_before_message(flow: Flow) -> int:
    """The most menus a caller must get through, on any path without loops, before they can
    leave a message or reach a person: the number behind "at most 2 menus" in `flows check`."""

    def most_from(step_id: str, seen: frozenset[str]) -> int:
        step = flow.steps.get(step_id)
        if step is None or step_id in seen or isinstance(step, HELP_STARTS):
            return 0
        here = 1 if isinstance(step, MenuStep) else 0
        later = (most_from(target, seen | {step_id}) for _, target in _edges(step))
        return here + max(later, default=0)

    return most_from(flow.first_step, frozenset())


# --- how the steps connect -------------------------------------------------------------------


def _edges(step: AnyStep) -> list[tuple[FieldPath, str]]:
    """The step ids a step can go to next, each with the field that names it."""
    match step:
        case MenuStep():
            options = [(("options", i, "goto"), o.goto) for i, o in enumerate(step.options)]
            return [*options, (("default",), step.default)]
        case BranchStep():
            rules = [(("rules", i, "goto"), r.goto) for i, r in enumerate(step.rules)]
            return [*rules, (("otherwise",), step.otherwise)]
        case AskStep():
            found: list[tuple[FieldPath, str]] = [(("next",), step.next)]
            return found + ([(("on_fail",), step.on_fail)] if step.on_fail else [])
        case TransferStep():
            return [(("on_no_answer",), step.on_no_answer)]
        case QueueStep():
            return [(("on_timeout",), step.on_timeout)]
        case TakeMessageStep():
            return [(("next",), step.next)] if step.next else []
        case SayStep() | RecordStep():
            return [(("next",), step.next)]
    return []


def _known_targets(flow: Flow, step: AnyStep) -> list[str]:
    return [target for _, target in _edges(step) if target in flow.steps]


def _reachable(flow: Flow) -> set[str]:
    return _closure(flow, [flow.first_step], set(flow.steps))


def _unknown(name: str, known: list[str], what: str) -> str:
    close = get_close_matches(name, known, n=1)
    return f"unknown {what} {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _unknown_targets(flow: Flow) -> Iterator[Problem]:
    steps = list(flow.steps)
    if flow.start is not None and flow.start not in flow.steps:
        yield Problem(None, ("start",), _unknown(flow.start, steps, "step"))
    for step_id, step in flow.steps.items():
        for field, target in _edges(step):
            if target not in flow.steps:
                yield Problem(step_id, field, _unknown(target, steps, "step"))


def _unreachable_steps(flow: Flow) -> Iterator[Problem]:
    if flow.first_step not in flow.steps:
        return  # already reported as an unknown start
    reachable = _reachable(flow)
    for step_id in flow.steps:
        if step_id not in reachable:
            yield Problem(step_id, (), f"no path from the start ({flow.first_step!r}) reaches it")


def _inescapable_loops(flow: Flow) -> Iterator[Problem]:
    """Steps a caller can get into but never out of: no ending is reachable from them."""
    everything = set(flow.steps)
    ends = {
        step_id
        for step_id, step in flow.steps.items()
        if isinstance(step, ENDINGS)
        or any(target not in flow.steps for _, target in _edges(step))  # reported already
    }
    stuck = {s for s in _reachable(flow) if not _closure(flow, [s], everything) & ends}
    onward = {s: _closure(flow, _known_targets(flow, flow.steps[s]), stuck) for s in stuck}
    reported: set[str] = set()
    for step_id in flow.steps:  # in file order, so each loop is reported at its first step
        if step_id not in onward or step_id not in onward[step_id] or step_id in reported:
            continue
        loop = [s for s in flow.steps if s in onward[step_id] and step_id in onward.get(s, ())]
        reported.update(loop)
        names = ", ".join(repr(s) for s in loop)
        yield Problem(
            step_id,
            (),
            f"callers can never leave {names}: no message, transfer, queue or hangup "
            "is reachable from there",
        )


def _closure(flow: Flow, start: list[str], among: set[str]) -> set[str]:
    """The steps of `among` reachable from `start` without leaving `among`."""
    seen = {s for s in start if s in among}
    todo = list(seen)
    while todo:
        for target in _known_targets(flow, flow.steps[todo.pop()]):
            if target in among and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _endings_without_a_message(flow: Flow) -> Iterator[Problem]:
    """Walk (step, message taken?) from the start: a hangup reached with nothing taken is wrong."""
    if flow.first_step not in flow.steps:
        return
    start = (flow.first_step, False)
    came_from: dict[tuple[str, bool], tuple[str, bool] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        step_id, taken = state
        step = flow.steps[step_id]
        if isinstance(step, HangupStep) and not taken:
            route = " → ".join(_route(came_from, state))
            yield Problem(
                step_id,
                (),
                f"callers can hang up here without leaving a message or reaching anyone "
                f"({route}); take a message first",
            )
        taken = taken or isinstance(step, TakeMessageStep)
        # A transfer or queue that connects ends the call well; only its fallback goes on.
        for target in _known_targets(flow, step):
            following = (target, taken)
            if following not in came_from:
                came_from[following] = state
                queue.append(following)


def _route(
    came_from: dict[tuple[str, bool], tuple[str, bool] | None], state: tuple[str, bool]
) -> list[str]:
    route: list[str] = []
    current: tuple[str, bool] | None = state
    while current is not None:
        route.append(current[0])
        current = came_from[current]
    return route[::-1]


# --- names that must point somewhere -----------------------------------------------------------


def _phone_problem(number: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        return f"{number!r} is not a phone number ({exc})"
    if not phonenumbers.is_valid_number(parsed):
        return f"{number!r} is not a valid phone number"
    written = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None if written == number else f"{number!r} should be written {written!r}"


def _transfer_targets(flow: Flow) -> Iterator[Problem]:
    contact_ids = [c.id for c in flow.contacts]
    for step_id, step in flow.steps.items():
        if not isinstance(step, TransferStep):
            continue
        if step.to == "on_call":
            if flow.rotation is None:
                yield Problem(step_id, ("to",), "transfer to 'on_call' needs a 'rotation'")
        elif step.to.startswith("+"):
            if (problem := _phone_problem(step.to)) is not None:
                yield Problem(step_id, ("to",), problem)
        elif (contact := flow.contact(step.to)) is None:
            message = _unknown(step.to, contact_ids, "contact")
            hint = "; use 'on_call', a contact id or a +E.164 number"
            yield Problem(step_id, ("to",), message + hint)
        elif contact.phone is None:
            yield Problem(step_id, ("to",), f"contact {step.to!r} has no phone to transfer to")


def _pins_without_privacy(flow: Flow) -> Iterator[Problem]:
    """A contact's PIN is asked for only in privacy mode: one without it is a mistake."""
    if flow.privacy is not None:
        return
    for i, contact in enumerate(flow.contacts):
        if contact.pin is not None:
            message = "a PIN is asked for only in privacy mode: add 'privacy:' with a pin"
            yield Problem(None, ("contacts", i, "pin"), message)


def _rotation_contacts(flow: Flow) -> Iterator[Problem]:
    if flow.rotation is None:
        return
    rota: list[tuple[FieldPath, str]] = [
        (("rotation", "members", i), member) for i, member in enumerate(flow.rotation.members)
    ]
    rota += [
        (("rotation", "overrides", i, "contact"), o.contact)
        for i, o in enumerate(flow.rotation.overrides)
    ]
    contact_ids = [c.id for c in flow.contacts]
    for field, contact_id in rota:
        contact = flow.contact(contact_id)
        if contact is None:
            yield Problem(None, field, _unknown(contact_id, contact_ids, "contact"))
        elif contact.phone is None:
            yield Problem(None, field, f"contact {contact_id!r} is on call but has no phone")


def _escalation_contacts(flow: Flow) -> Iterator[Problem]:
    policies: list[tuple[FieldPath, EscalationPolicy]] = [(("escalation",), flow.escalation)]
    policies += [
        (("escalation_by_urgency", urgency.value), policy)
        for urgency, policy in flow.escalation_by_urgency.items()
    ]
    contact_ids = [c.id for c in flow.contacts]
    for group, members in flow.groups.items():
        if group in contact_ids:
            yield Problem(None, ("groups", group), f"{group!r} is both a group and a contact id")
        for i, member in enumerate(members):
            if member not in contact_ids:
                yield Problem(None, ("groups", group, i), _unknown(member, contact_ids, "contact"))
    for where, policy in policies:
        for i, step in enumerate(policy.steps):
            if step.notify not in ("on_call", "everyone", *flow.groups, *contact_ids):
                known = [*contact_ids, *flow.groups]
                field = (*where, "steps", i, "notify")
                yield Problem(None, field, _unknown(step.notify, known, "contact or group"))
        if policy.fallback is not None and policy.fallback not in contact_ids:
            field = (*where, "fallback")
            yield Problem(None, field, _unknown(policy.fallback, contact_ids, "contact"))
        first_wait = policy.steps[0].wait_minutes
        if policy.callback_minutes is not None and policy.callback_minutes < first_wait:
            field = (*where, "callback_minutes")
            yield Problem(None, field, (
                f"a call back promised within {policy.callback_minutes} minutes falls due "
                f"before the first contact's {first_wait} minutes to acknowledge are up; "
                f"promise at least {first_wait}"))  # fmt: skip


def _answer_branches(flow: Flow) -> Iterator[Problem]:
    saved = sorted(
        {s.save_as for s in flow.steps.values() if isinstance(s, AskStep | MenuStep) and s.save_as}
    )
    for step_id, step in flow.steps.items():
        if not isinstance(step, BranchStep):
            continue
        for i, rule in enumerate(step.rules):
            if rule.answer is not None and rule.answer not in saved:
                known = f" (saved answers: {', '.join(saved)})" if saved else ""
                message = f"no ask or menu step saves an answer called {rule.answer!r}{known}"
                yield Problem(step_id, ("rules", i, "answer"), message)


def _empty_hours(flow: Flow) -> Iterator[Problem]:
    for day, windows in flow.hours.items():
        for i, window in enumerate(windows):
            if window.start == window.end != MIDNIGHT:
                at = window.start.strftime("%H:%M")
                message = (
                    f"{at}-{at} opens and closes at the same time; "
                    "write 00:00-24:00 for a whole day"
                )
                yield Problem(None, ("hours", day.value, i), message)


def _summary_recipients(flow: Flow) -> Iterator[Problem]:
    """Each summary recipient is an email, or a contact who has one; no hours needs an `at`."""
    if flow.summary is None:
        return
    contact_ids = [c.id for c in flow.contacts]
    for i, recipient in enumerate(flow.summary.recipients):
        if "@" in recipient:
            continue
        contact = flow.contact(recipient)
        field = ("summary", "recipients", i)
        if contact is None:
            hint = "; or write an email address"
            yield Problem(None, field, _unknown(recipient, contact_ids, "contact") + hint)
        elif contact.email is None:
            yield Problem(None, field, f"contact {recipient!r} has no email for the summary")
    if flow.summary.at is None and not any(flow.hours.values()):
        message = "with no opening hours, say when to send the summary ('at: \"07:30\"')"
        yield Problem(None, ("summary",), message)


def _duplicates(flow: Flow) -> Iterator[Problem]:
    seen: set[str] = set()
    for i, number in enumerate(flow.numbers):
        if number in seen:
            yield Problem(None, ("numbers", i), f"{number} is listed twice")
        seen.add(number)
    seen = set()
    for i, contact in enumerate(flow.contacts):
        if contact.id in seen:
            yield Problem(None, ("contacts", i, "id"), f"contact id {contact.id!r} is used twice")
        seen.add(contact.id)
