"""What Twilio tells us about notifications, read from its form fields and checked once at the edge:
every value cleaned and bounded (`app.telephony.fields`) before it reaches the database or TwiML.

https://www.twilio.com/docs/messaging/guides/webhook-request
https://www.twilio.com/docs/voice/api/call-resource#statuscallback
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.telephony import fields
from app.telephony.fields import ADDRESS_LENGTH, DIGITS_LENGTH, SMS_LENGTH, STATUS_LENGTH
from app.telephony.signature import BadWebhookError

ERROR_CODE_LENGTH = 16  # Twilio's error codes are five digits


def _required(form: Mapping[str, str], name: str, limit: int) -> str:
    value = fields.text(form, name, limit)
    if value is None:
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
            sid=fields.required_sid(form, "MessageSid"),
            sender=_required(form, "From", ADDRESS_LENGTH),
            to=fields.text(form, "To", ADDRESS_LENGTH) or "",
            body=fields.text(form, "Body", SMS_LENGTH, multiline=True) or "",
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
            sid=fields.required_sid(form, "MessageSid"),
            status=_required(form, "MessageStatus", STATUS_LENGTH),
            error_code=fields.text(form, "ErrorCode", ERROR_CODE_LENGTH),
        )

    @classmethod
    def for_call(cls, form: Mapping[str, str]) -> StatusReport:
        return cls(
            sid=fields.required_sid(form, "CallSid"),
            status=_required(form, "CallStatus", STATUS_LENGTH),
            error_code=fields.text(form, "ErrorCode", ERROR_CODE_LENGTH),
            answered_by=fields.text(form, "AnsweredBy", STATUS_LENGTH),
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
            call_sid=fields.required_sid(form, "CallSid"),
            answered_by=fields.text(form, "AnsweredBy", STATUS_LENGTH),
            digits=fields.text(form, "Digits", DIGITS_LENGTH),
        )


def is_machine(answered_by: str | None) -> bool:
    """Answering machine detection's verdict: machine_start, machine_end_beep, ..., or fax.

    https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters
    """
    return answered_by is not None and (answered_by.startswith("machine") or answered_by == "fax")
