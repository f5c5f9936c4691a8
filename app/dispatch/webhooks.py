"""What Twilio tells us about the texts and calls we sent, read from its form fields and checked
once at the edge: every value cleaned and bounded (`app.telephony.fields`).

https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
https://www.twilio.com/docs/voice/api/call-resource#statuscallback
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.telephony import fields
from app.telephony.fields import STATUS_LENGTH

ERROR_CODE_LENGTH = 16  # Twilio's error codes are five digits


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
            status=fields.required_text(form, "MessageStatus", STATUS_LENGTH),
            error_code=fields.text(form, "ErrorCode", ERROR_CODE_LENGTH),
        )

    @classmethod
    def for_call(cls, form: Mapping[str, str]) -> StatusReport:
        return cls(
            sid=fields.required_sid(form, "CallSid"),
            status=fields.required_text(form, "CallStatus", STATUS_LENGTH),
            error_code=fields.text(form, "ErrorCode", ERROR_CODE_LENGTH),
            answered_by=fields.text(form, "AnsweredBy", STATUS_LENGTH),
        )


def is_machine(answered_by: str | None) -> bool:
    """Answering machine detection's verdict: machine_start, machine_end_beep, ..., or fax.

    https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters
    """
    return answered_by is not None and (answered_by.startswith("machine") or answered_by == "fax")
