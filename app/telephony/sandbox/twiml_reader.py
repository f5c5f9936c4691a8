"""Reads a TwiML voice document into plain verb values, with Twilio's defaults filled in.

The simulated caller executes these; keeping the XML here lets it read as call behaviour.
Attribute defaults follow https://www.twilio.com/docs/voice/twiml.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass


class TwimlError(ValueError):
    """The document is not TwiML Twilio could run (Twilio error 12100, document parse failure)."""


@dataclass(frozen=True)
class SayVerb:
    text: str


@dataclass(frozen=True)
class PlayVerb:
    url: str


@dataclass(frozen=True)
class PauseVerb:
    length: int


Prompt = SayVerb | PlayVerb | PauseVerb
"""What may be nested in a <Gather>: the caller hears it while Twilio listens."""


@dataclass(frozen=True)
class GatherVerb:
    action: str | None  # None: Twilio requests the current document's URL
    method: str
    input: frozenset[str]  # "dtmf", "speech" or both
    finish_on_key: str
    timeout: int
    action_on_empty_result: bool
    prompts: tuple[Prompt, ...]


@dataclass(frozen=True)
class RecordVerb:
    action: str | None  # None: Twilio requests the current document's URL
    method: str
    timeout: int
    finish_on_key: str
    max_length: int
    recording_status_callback: str | None
    recording_status_callback_method: str
    transcribe: bool
    transcribe_callback: str | None


@dataclass(frozen=True)
class ConferenceNoun:
    """<Dial><Conference>: join a named conference room."""

    name: str
    end_on_exit: bool  # endConferenceOnExit: the room closes when this participant leaves
    status_callback: str | None
    status_callback_method: str
    status_callback_events: frozenset[str]  # start, end, join, leave, ...


@dataclass(frozen=True)
class DialVerb:
    target: str  # the number (or client, SIP address, conference) being called
    action: str | None  # None: execution continues with the next verb
    method: str
    timeout: int
    conference: ConferenceNoun | None = None


@dataclass(frozen=True)
class EnqueueVerb:
    queue_name: str
    action: str | None
    method: str
    wait_url: str | None  # None: Twilio's own hold music, forever
    wait_url_method: str


@dataclass(frozen=True)
class RedirectVerb:
    url: str
    method: str


@dataclass(frozen=True)
class HangupVerb:
    pass


@dataclass(frozen=True)
class LeaveVerb:
    pass


@dataclass(frozen=True)
class RejectVerb:
    reason: str  # "rejected" or "busy"


@dataclass(frozen=True)
class UnknownVerb:
    name: str


Verb = (
    SayVerb
    | PlayVerb
    | PauseVerb
    | GatherVerb
    | RecordVerb
    | DialVerb
    | EnqueueVerb
    | RedirectVerb
    | HangupVerb
    | LeaveVerb
    | RejectVerb
    | UnknownVerb
)


def parse_twiml(text: str) -> list[Verb]:
    """The verbs of a `<Response>` document, in the order Twilio would execute them."""
    try:
        # The document comes from the service under test, which we trust as much as the tests;
        # defusedxml is not a dependency, and the standard parser refuses external entities.
        root = ElementTree.fromstring(text)  # noqa: S314
    except ElementTree.ParseError as exc:
        raise TwimlError(f"not XML ({exc})") from exc
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, not <Response>")
    return [_verb(element) for element in root]


def _verb(el: ElementTree.Element) -> Verb:
    match el.tag:
        case "Say" | "Play" | "Pause":
            return _prompt(el)
        case "Gather":
            prompts = tuple(_prompt(child) for child in el if child.tag in {"Say", "Play", "Pause"})
            return GatherVerb(
                action=el.get("action"),
                method=_method(el, "method"),
                input=frozenset(el.get("input", "dtmf").split()),
                finish_on_key=el.get("finishOnKey", "#"),
                timeout=_int(el, "timeout", 5),
                action_on_empty_result=el.get("actionOnEmptyResult", "false") == "true",
                prompts=prompts,
            )
        case "Record":
            return RecordVerb(
                action=el.get("action"),
                method=_method(el, "method"),
                timeout=_int(el, "timeout", 5),
                finish_on_key=el.get("finishOnKey", "1234567890*#"),
                # maxLength="0" used to mean the maximum, one hour.
                max_length=_int(el, "maxLength", 3600) or 3600,
                recording_status_callback=el.get("recordingStatusCallback"),
                recording_status_callback_method=_method(el, "recordingStatusCallbackMethod"),
                transcribe=el.get("transcribe", "false") == "true",
                transcribe_callback=el.get("transcribeCallback"),
            )
        case "Dial":
            nouns = [_text(child) for child in el if child.tag in {"Number", "Client", "Sip"}]
            room = el.find("Conference")
            return DialVerb(
                target=", ".join(nouns) or _text(el),
                action=el.get("action"),
                method=_method(el, "method"),
                timeout=_int(el, "timeout", 30),
                conference=None if room is None else _conference(room),
            )
        case "Enqueue":
            return EnqueueVerb(
                queue_name=_text(el),
                action=el.get("action"),
                method=_method(el, "method"),
                wait_url=el.get("waitUrl"),
                wait_url_method=_method(el, "waitUrlMethod"),
            )
        case "Redirect":
            return RedirectVerb(url=_text(el), method=_method(el, "method"))
        case "Hangup":
            return HangupVerb()
        case "Leave":
            return LeaveVerb()
        case "Reject":
            return RejectVerb(reason=el.get("reason", "rejected"))
        case _:
            return UnknownVerb(name=el.tag)


def _conference(el: ElementTree.Element) -> ConferenceNoun:
    # https://www.twilio.com/docs/voice/twiml/conference#attributes
    return ConferenceNoun(
        name=_text(el),
        end_on_exit=el.get("endConferenceOnExit", "false") == "true",
        status_callback=el.get("statusCallback"),
        status_callback_method=_method(el, "statusCallbackMethod"),
        status_callback_events=frozenset(el.get("statusCallbackEvent", "").split()),
    )


def _prompt(el: ElementTree.Element) -> Prompt:
    if el.tag == "Say":
        return SayVerb(text=_text(el))
    if el.tag == "Play":
        return PlayVerb(url=_text(el))
    return PauseVerb(length=_int(el, "length", 1))


def _text(el: ElementTree.Element) -> str:
    """The text as a listener hears it: SSML tags dropped, whitespace collapsed."""
    return " ".join("".join(el.itertext()).split())


def _method(el: ElementTree.Element, name: str) -> str:
    return el.get(name, "POST").upper()


def _int(el: ElementTree.Element, name: str, default: int) -> int:
    value = el.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise TwimlError(f"<{el.tag} {name}={value!r}> is not a whole number") from exc
