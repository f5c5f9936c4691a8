"""What Twilio tells us of a contact's answer, read from its form fields and checked once at the
edge: every value cleaned and bounded (`app.telephony.fields`) before it reaches the database or
TwiML.

https://www.twilio.com/docs/messaging/guides/webhook-request
https://www.twilio.com/docs/voice/twiml/gather#action
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.telephony import fields
from app.telephony.fields import ADDRESS_LENGTH, DIGITS_LENGTH, SMS_LENGTH, STATUS_LENGTH


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
            sender=fields.required_text(form, "From", ADDRESS_LENGTH),
            to=fields.text(form, "To", ADDRESS_LENGTH) or "",
            body=fields.text(form, "Body", SMS_LENGTH, multiline=True) or "",
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
