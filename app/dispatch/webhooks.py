"""What Twilio tells us about notifications, read from its form fields and checked once at the edge.

https://www.twilio.com/docs/messaging/guides/webhook-request
https://www.twilio.com/docs/voice/api/call-resource#statuscallback
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.telephony.signature import BadWebhookError


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise BadWebhookError(f"{name} is required")
    return value


@dataclass(frozen=True)
class SmsReceived:
    """A text to one of our numbers: a contact replying to a notification, or anyone else."""

    sid: str
    sender: str
    to: str
    body: str

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> SmsReceived:
        return cls(
            sid=_required(form, "MessageSid"),
            sender=_required(form, "From"),
            to=form.get("To", ""),
            body=form.get("Body", ""),
        )


@dataclass(frozen=True)
class StatusReport:
    """A status callback for an SMS or a call we placed: what happened, and why it failed."""

    sid: str
    status: str
    error_code: str | None = None
    answered_by: str | None = None  # answering machine detection, on calls

    @classmethod
    def for_sms(cls, form: Mapping[str, str]) -> StatusReport:
        return cls(
            sid=_required(form, "MessageSid"),
            status=_required(form, "MessageStatus"),
            error_code=form.get("ErrorCode") or None,
        )

    @classmethod
    def for_call(cls, form: Mapping[str, str]) -> StatusReport:
        return cls(
            sid=_required(form, "CallSid"),
            status=_required(form, "CallStatus"),
            error_code=form.get("ErrorCode") or None,
            answered_by=form.get("AnsweredBy") or None,
        )


@dataclass(frozen=True)
class NotifyCallTurn:
    """One request of a notification call: answered (maybe by a machine), or a key pressed."""

    call_sid: str
    answered_by: str | None = None
    digits: str | None = None

    @classmethod
    def parse(cls, form: Mapping[str, str]) -> NotifyCallTurn:
        return cls(
            call_sid=_required(form, "CallSid"),
            answered_by=form.get("AnsweredBy") or None,
            digits=form.get("Digits") or None,
        )


def is_machine(answered_by: str | None) -> bool:
    """Answering machine detection's verdict: machine_start, machine_end_beep, ..., or fax.

    https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters
    """
    return answered_by is not None and (answered_by.startswith("machine") or answered_by == "fax")
