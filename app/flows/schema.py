"""The voice flow file format: one YAML file per client business, parsed into these models.

Field shapes and single values (a time zone, a phone number, a holiday country) are checked here;
how the steps connect (targets, reachability, "every path ends with a message") is `check.py`'s job.
`nightdesk flows schema` publishes the JSON Schema of `Flow` for editors.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.flows.pins import is_pin_hash

StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]


def _e164(value: str) -> str:
    """A phone number in E.164 form (+ and country code), as Twilio sends and expects them."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number in +E.164 form ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"{value!r} is not a possible phone number")
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value:
        raise ValueError(f"{value!r} should be written {formatted!r}")
    return formatted


PhoneNumber = Annotated[str, Field(examples=["+441134960000"])]


def _pin_hash(value: str | None) -> str | None:
    if value is not None and not is_pin_hash(value):
        raise ValueError(
            "write the PIN's hash, not the PIN: run `nightdesk flows pin` and paste its line"
        )
    return value


PinHash = Annotated[
    str,
    Field(
        description="A PIN's hash from `nightdesk flows pin` (never the PIN itself)",
        examples=["pbkdf2-sha256$20000$<salt>$<hash>"],
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Urgency(StrEnum):
    routine = "routine"
    urgent = "urgent"
    emergency = "emergency"


class Channel(StrEnum):
    sms = "sms"
    voice = "voice"
    email = "email"


class Weekday(StrEnum):
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"


_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class TimeRange(Strict):
    """An opening window on one day; `end` before `start` runs past midnight."""

    start: dt.time
    end: dt.time  # 24:00 is written as 00:00

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _RANGE.match(value.strip())
            if not match:
                raise ValueError(f"{value!r} should look like '08:00-17:30'")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            if h2 == 24 and m2 == 0:
                h2 = 0
            if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
                raise ValueError(f"{value!r} is not a time of day")
            return {"start": dt.time(h1, m1), "end": dt.time(h2, m2)}
        return value


class HolidayCalendar(Strict):
    """Public holidays from the `holidays` library, plus the client's own closed days."""

    country: str | None = Field(None, examples=["GB"])
    subdivision: str | None = Field(None, examples=["ENG"])
    closed: list[dt.date] = Field(default_factory=list, description="Extra days the office is shut")

    @model_validator(mode="after")
    def _known_country(self) -> HolidayCalendar:
        if self.country is None:
            return self
        supported = holidays.list_supported_countries()
        if self.country not in supported:
            raise ValueError(
                f"unknown holiday country {self.country!r} (use ISO codes like GB, US)"
            )
        if self.subdivision is not None and self.subdivision not in supported[self.country]:
            known = ", ".join(supported[self.country][:12])
            raise ValueError(
                f"unknown subdivision {self.subdivision!r} for {self.country} (known: {known})"
            )
        return self


class Speech(Strict):
    """How Twilio speaks to and listens to this client's callers."""

    voice: str = Field("Polly.Amy", description="A Twilio <Say> voice, e.g. Polly.Joanna")
    language: str = Field("en-GB", description="BCP-47 language for <Say> and speech recognition")


class Contact(Strict):
    id: Name
    name: str
    phone: PhoneNumber | None = None
    email: str | None = None
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.sms, Channel.voice],
        description="In order of preference: the next is tried when one fails",
    )
    quiet_hours: list[TimeRange] = Field(
        default_factory=list,
        description="Routine messages wait until these end; urgent ones don't (e.g. 22:00-07:00)",
    )
    pin: PinHash | None = Field(
        None, description="Privacy mode: this contact's own PIN, instead of the client's"
    )

    @field_validator("phone")
    @classmethod
    def _phone_e164(cls, value: str | None) -> str | None:
        return None if value is None else _e164(value)

    @field_validator("pin")
    @classmethod
    def _pin_is_hashed(cls, value: str | None) -> str | None:
        return _pin_hash(value)


class Shift(StrEnum):
    daily = "daily"
    weekly = "weekly"


class Override(Strict):
    """Someone covering a rotation for a dated stretch ("Alex covers 24–27 December")."""

    contact: Name
    start: dt.datetime
    end: dt.datetime


class Rotation(Strict):
    members: list[Name] = Field(min_length=1)
    handoff: dt.time = dt.time(9, 0)
    shift: Shift | int = Field(Shift.weekly, description="daily, weekly, or a number of days")
    starts: dt.date = Field(dt.date(2026, 1, 5), description="The first shift's day (member 1)")
    overrides: list[Override] = Field(default_factory=list)


class EscalationStep(Strict):
    notify: Name | Literal["on_call", "everyone"] = Field(
        "on_call", description="on_call, everyone, a contact id or a group name"
    )
    channels: list[Channel] | None = Field(
        None,
        description="Send on all of these at once. Default: the contact's own channels, "
        "one at a time in order of preference, moving on when one fails",
    )
    wait_minutes: int = Field(10, ge=1, le=24 * 60)


class EscalationPolicy(Strict):
    steps: list[EscalationStep] = Field(default_factory=lambda: [EscalationStep()], min_length=1)
    repeat: int = Field(1, ge=0, le=10, description="Times to run the whole policy again")
    fallback: Name | None = Field(None, description="Told when nobody acknowledges")
    callback_minutes: int | None = Field(
        None,
        ge=5,
        le=7 * 24 * 60,
        description="The call back promised to callers: minutes from when the first contact "
        "can be told (after their quiet hours). When it passes with no call back recorded, "
        "the message is escalated again, once",
    )


MIN_RETENTION_DAYS = 7
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SummarySettings(Strict):
    """The morning summary: one email of the messages since the last one, to each recipient."""

    at: dt.time | None = Field(
        None, description="Local time to send it every day. Default: opening time, on open days"
    )
    recipients: list[str] = Field(
        min_length=1, description="Contact ids (their email) or email addresses"
    )
    skip_empty: bool = Field(False, description="Send nothing after a night with no messages")

    @field_validator("recipients")
    @classmethod
    def _ids_or_emails(cls, value: list[str]) -> list[str]:
        for recipient in value:
            if "@" in recipient and not _EMAIL.match(recipient):
                raise ValueError(f"{recipient!r} is not an email address")
        return value


class RetentionSettings(Strict):
    """How long this client's records are kept: messages, their calls and recording links older
    than `days` are purged (`nightdesk purge`, and the dispatcher by itself), whether or not
    anyone acknowledged them; each purge leaves a count in the audit log."""

    days: int = Field(
        ge=MIN_RETENTION_DAYS,
        le=3650,
        description="Days a message and its call are kept, counted from when it was taken "
        f"(at least {MIN_RETENTION_DAYS}: escalation, callbacks and summaries are long done)",
    )
    delete_recordings: bool = Field(
        False, description="Also delete each purged message's recording at Twilio"
    )


class Privacy(Strict):
    """Privacy mode, for medical and legal practices: texts, emails and summaries say that there
    is a message but not what it is; the notification call reads it only after a PIN; every
    read of a message in the portal, API, console or CLI is logged for the client to see."""

    pin: PinHash = Field(
        description="The PIN a contact keys on the notification call before hearing a message"
    )

    @field_validator("pin")
    @classmethod
    def _pin_is_hashed(cls, value: str) -> str:
        _pin_hash(value)
        return value


class Console(Strict):
    """What a virtual PA sees when they take this client's caller in the console."""

    answer_phrase: str = Field(
        "{greeting}, {client}, {pa} speaking.",
        description="What the PA says on answering: {greeting} is Good morning/afternoon/"
        "evening in the client's time, {client} the client's name, {pa} the PA's first name",
        examples=["{greeting}, Acme Plumbing, this is {pa}. How can I help?"],
    )
    instructions: str = Field(
        "Take the caller's name, the best number to call them back on, and what it is about. "
        "Read the number back to them.",
        description="The client's instructions for PAs, shown beside the message form",
    )

    @field_validator("answer_phrase")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        unknown = names - {"greeting", "client", "pa"}
        if unknown:
            first = sorted(unknown)[0]
            raise ValueError(
                f"unknown placeholder {{{first}}} (use {{greeting}}, {{client}}, {{pa}})"
            )
        return value


# --- the call-taking steps ---------------------------------------------------------------


class StepBase(Strict):
    """Common base of the call-taking steps (discriminated by `type`)."""


class SayStep(StepBase):
    type: Literal["say"]
    text: str | None = None
    audio: str | None = Field(None, description="URL of an audio file to play instead of text")
    next: StepId

    @model_validator(mode="after")
    def _text_or_audio(self) -> SayStep:
        if (self.text is None) == (self.audio is None):
            raise ValueError("a say step needs exactly one of 'text' or 'audio'")
        return self


class MenuOption(Strict):
    key: str | None = Field(None, pattern=r"^[0-9*#]$", description="Keypad key")
    words: list[str] = Field(default_factory=list, description="Spoken words that pick it")
    value: str | None = Field(None, description="What is saved under the menu's save_as")
    goto: StepId

    @model_validator(mode="after")
    def _key_or_words(self) -> MenuOption:
        if self.key is None and not self.words:
            raise ValueError("a menu option needs a 'key', 'words' or both")
        return self


class MenuStep(StepBase):
    type: Literal["menu"]
    prompt: str
    options: list[MenuOption] = Field(min_length=1)
    save_as: Name | None = None
    retry_prompt: str = "Sorry, I didn't catch that."
    attempts: int = Field(2, ge=1, le=5)
    timeout: int = Field(6, ge=2, le=30, description="Seconds of silence before a retry")
    default: StepId = Field(description="Where to go after the last failed attempt")


class Expect(StrEnum):
    phone = "phone"
    yes_no = "yes_no"
    speech = "speech"
    digits = "digits"


class AskStep(StepBase):
    type: Literal["ask"]
    prompt: str
    save_as: Name
    expect: Expect = Expect.speech
    confirm: bool | None = Field(None, description="Read the answer back (default: phone only)")
    max_digits: int = Field(12, ge=1, le=20)
    attempts: int = Field(2, ge=1, le=5)
    timeout: int = Field(6, ge=2, le=30)
    next: StepId
    on_fail: StepId | None = Field(None, description="Default: carry on to 'next' without it")

    @property
    def confirms(self) -> bool:
        return self.confirm if self.confirm is not None else self.expect is Expect.phone


class RecordStep(StepBase):
    type: Literal["record"]
    prompt: str
    max_seconds: int = Field(120, ge=5, le=3600)
    transcribe: bool = True
    next: StepId


class Condition(StrEnum):
    open = "open"
    closed = "closed"
    holiday = "holiday"


class BranchRule(Strict):
    when: Condition | None = None
    answer: Name | None = None
    equals: str | None = None
    goto: StepId

    @model_validator(mode="after")
    def _one_test(self) -> BranchRule:
        if (self.when is None) == (self.answer is None):
            raise ValueError("a rule tests either 'when' (open/closed/holiday) or an 'answer'")
        return self


class BranchStep(StepBase):
    type: Literal["branch"]
    rules: list[BranchRule] = Field(min_length=1)
    otherwise: StepId


class TransferStep(StepBase):
    type: Literal["transfer"]
    to: str = Field(description="'on_call', a contact id, or a +E.164 number")
    prompt: str | None = "Please hold while I connect you."
    timeout: int = Field(20, ge=5, le=120, description="Seconds to ring before giving up")
    on_no_answer: StepId


class QueueStep(StepBase):
    type: Literal["queue"]
    hold_message: str = "Thank you for holding. Someone will be with you shortly."
    hold_music: str | None = None
    timeout: int = Field(90, ge=10, le=1800, description="Seconds on hold before falling back")
    on_timeout: StepId


class TakeMessageStep(StepBase):
    type: Literal["take_message"]
    urgency: Urgency = Urgency.routine
    say: str | None = "Thank you. Your message has been passed on."
    next: StepId | None = Field(None, description="Default: hang up with the flow's goodbye")


class HangupStep(StepBase):
    type: Literal["hangup"]
    say: str | None = "Goodbye."


AnyStep = (
    SayStep
    | MenuStep
    | AskStep
    | RecordStep
    | BranchStep
    | TransferStep
    | QueueStep
    | TakeMessageStep
    | HangupStep
)
Step = Annotated[AnyStep, Field(discriminator="type")]


class Flow(Strict):
    """One client business: who it is, when it is open, who is on call, and how calls are taken."""

    client: Slug = Field(description="Short id used in URLs and the CLI, e.g. acme-plumbing")
    name: str
    numbers: list[PhoneNumber] = Field(min_length=1, description="Its Twilio numbers, +E.164")
    timezone: str = Field(examples=["Europe/London"])
    speech: Speech = Speech()
    hours: dict[Weekday, list[TimeRange]] = Field(default_factory=dict)
    holidays: HolidayCalendar = HolidayCalendar()
    contacts: list[Contact] = Field(default_factory=list)
    groups: dict[Name, list[Name]] = Field(
        default_factory=dict, description="Named sets of contacts an escalation step can notify"
    )
    rotation: Rotation | None = None
    escalation: EscalationPolicy = EscalationPolicy()
    escalation_by_urgency: dict[Urgency, EscalationPolicy] = Field(default_factory=dict)
    caller_updates: bool = Field(True, description="Text mobile callers when their message moves")
    summary: SummarySettings | None = Field(None, description="The morning summary by email")
    retention: RetentionSettings | None = Field(
        None, description="Purge messages, calls and recording links after so many days. "
        "Default: kept until deleted by hand"
    )  # fmt: skip
    privacy: Privacy | None = Field(
        None, description="Privacy mode: no message content in texts, emails and summaries"
    )
    goodbye: str = "Thank you for calling. Goodbye."
    console: Console = Field(Console(), description="The PA console's script for this client")
    start: StepId | None = Field(None, description="Default: the first step")
    steps: dict[StepId, Step] = Field(min_length=1)

    @field_validator("numbers")
    @classmethod
    def _numbers_e164(cls, value: list[str]) -> list[str]:
        return [_e164(v) for v in value]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/London)"
            ) from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def first_step(self) -> str:
        return self.start or next(iter(self.steps))

    def contact(self, contact_id: str) -> Contact | None:
        return next((c for c in self.contacts if c.id == contact_id), None)

    @property
    def private(self) -> bool:
        """Privacy mode is on: notifications carry no message content."""
        return self.privacy is not None

    def pin_for(self, contact_id: str | None) -> str | None:
        """The PIN hash a contact keys before hearing a message; None outside privacy mode."""
        if self.privacy is None:
            return None
        contact = self.contact(contact_id) if contact_id else None
        return (contact.pin if contact else None) or self.privacy.pin

    def policy_for(self, urgency: Urgency) -> EscalationPolicy:
        return self.escalation_by_urgency.get(urgency, self.escalation)

    def summary_addresses(self) -> list[tuple[str | None, str]]:
        """(contact id or None, email) for each summary recipient with an email, in order."""
        if self.summary is None:
            return []
        found: list[tuple[str | None, str]] = []
        for recipient in self.summary.recipients:
            contact = None if "@" in recipient else self.contact(recipient)
            email = recipient if "@" in recipient else (contact.email if contact else None)
            if email and email not in [address for _, address in found]:
                found.append((contact.id if contact else None, email))
        return found
