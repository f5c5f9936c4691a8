"""What a simulated caller does (its script) and what came of it (the conversation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Press:
    """The caller presses keys, e.g. "1" or "0123#"."""

    digits: str


@dataclass(frozen=True)
class Say:
    """The caller speaks: an answer to a speech <Gather>, or the message for a <Record>."""

    text: str


@dataclass(frozen=True)
class Silence:
    """The caller says nothing until Twilio's timeout."""


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up."""


CallerInput = Press | Say | Silence | HangUp

Speaker = Literal["nightdesk", "caller", "system"]


@dataclass(frozen=True)
class Line:
    """One thing heard or done during the call; "system" lines describe the network's side."""

    who: Speaker
    text: str


@dataclass
class Conversation:
    """The record of one simulated call: what was said, and every webhook with its HTTP status."""

    call_sid: str
    lines: list[Line] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)
    duration: int = 0  # simulated seconds, as reported in the final status callback

    def transcript(self) -> str:
        """The call as readable text, one line per event, for the CLI and failing tests."""
        return "\n".join(f"{line.who + ':':<10} {line.text}" for line in self.lines)

    def heard(self) -> str:
        """Everything the service said or played to the caller, for quick assertions."""
        return "\n".join(line.text for line in self.lines if line.who == "nightdesk")


def describe(item: CallerInput | None) -> str:
    """How a caller input reads in a transcript."""
    match item:
        case Press(digits=digits):
            return f"(presses {digits})"
        case Say(text=text):
            return f'"{text}"'
        case HangUp():
            return "(hangs up)"
        case _:
            return "(silence)"
