"""Reading Twilio's form fields at the edge: every value cleaned and bounded before it can reach
the database, a log or TwiML.

- Control characters go (PostgreSQL refuses NUL in text and JSON; TwiML with them is not XML);
  multi-line values (speech, transcriptions, SMS bodies) keep their newlines and tabs.
- Text is cut to a length that fits where it is stored; a caller's words are never refused.
- Ids (SIDs) and numbers are refused with BadWebhookError (400) when malformed: Twilio never
  sends those, so only a forger or a bug does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from app.telephony.signature import BadWebhookError

SID_LENGTH = 64  # Twilio's SIDs are 34 characters; room to spare, and the columns' size
ADDRESS_LENGTH = 255  # From/To: E.164 needs 16, a SIP URI (sip:alice@example.com) more
STATUS_LENGTH = 32  # "in-progress", "undelivered", "machine_end_beep"...
DIGITS_LENGTH = 64  # keys pressed in one Gather
SPEECH_LENGTH = 2_000  # SpeechResult: one answer
TRANSCRIPTION_LENGTH = 10_000  # about an hour of speech, far beyond a voicemail
SMS_LENGTH = 1_600  # Twilio's longest message body
URL_LENGTH = 500  # the messages.recording_url column
MOST_SECONDS = 86_400  # a day: Twilio ends any call before then (TimeLimit is at most 24 h)

# Characters no field keeps: C0 and C1 controls, DEL, surrogates, and U+FFFE/U+FFFF, which
# XML 1.0 forbids. https://www.w3.org/TR/xml/#charsets
_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_MULTI_LINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_WHOLE_NUMBER = re.compile("[0-9]{1,12}")  # ASCII digits only: int() also reads "١٢" and "1_0"


def clean(value: str, *, multiline: bool = False) -> str:
    """The value without control characters (newlines and tabs kept when `multiline`)."""
    return (_MULTI_LINE if multiline else _ONE_LINE).sub("", value)


def text(form: Mapping[str, str], name: str, limit: int, *, multiline: bool = False) -> str | None:
    """A free-text field, cleaned and cut to `limit` characters; None when absent or empty."""
    value = form.get(name)
    if not value:
        return None
    # Nearly every value is short and printable (so it holds no control character): only the
    # others are cleaned, cut first so that a megabyte of junk costs no more than `limit`.
    if len(value) > limit or not value.isprintable():
        value = clean(value[: limit * 2], multiline=multiline)
    return value.strip()[:limit].rstrip() or None


def sid(form: Mapping[str, str], name: str) -> str | None:
    """A Twilio id (CallSid, MessageSid, RecordingSid...); refused when longer than any is."""
    value = text(form, name, SID_LENGTH + 1)
    if value is not None and len(value) > SID_LENGTH:
        raise BadWebhookError(f"{name} is longer than {SID_LENGTH} characters")
    return value


def required_sid(form: Mapping[str, str], name: str) -> str:
    value = sid(form, name)
    if value is None:
        raise BadWebhookError(f"{name} is required")
    return value


def seconds(form: Mapping[str, str], name: str) -> int | None:
    """A duration in whole seconds; longer than a day counts as a day (no call lasts that long,
    and the database column is a 32-bit integer)."""
    value = form.get(name)
    if value is None or value == "":
        return None
    if not _WHOLE_NUMBER.fullmatch(value):
        raise BadWebhookError(f"{name} must be a whole number of seconds")
    return min(int(value), MOST_SECONDS)


def url(form: Mapping[str, str], name: str) -> str | None:
    """A link Twilio gives us (a recording): http(s) only, as it ends up in emails and pages."""
    value = text(form, name, URL_LENGTH + 1)
    if value is None:
        return None
    if not value.startswith(("https://", "http://")) or len(value) > URL_LENGTH:
        raise BadWebhookError(f"{name} must be an http(s) URL of at most {URL_LENGTH} characters")
    return value


def required_text(form: Mapping[str, str], name: str, limit: int) -> str:
    """`text`, refused with a 400 when the field is missing or empty."""
    value = text(form, name, limit)
    if value is None:
        raise BadWebhookError(f"{name} is required")
    return value
