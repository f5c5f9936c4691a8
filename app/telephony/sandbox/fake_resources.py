"""What the fake Twilio stores and how Twilio would show it: resource records, their JSON,
Twilio's error bodies, and the status steps a message or call goes through.

Pure data and functions; `fake_twilio.py` holds the server and the scripting around them.
"""

from __future__ import annotations

import math
import operator
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import urlencode

API_VERSION = "2010-04-01"

SmsOutcome = Literal["delivered", "undelivered", "failed", "sent"]
CallOutcome = Literal["completed", "no-answer", "busy", "failed", "in-progress"]
CALL_ENDED = frozenset({"completed", "no-answer", "busy", "failed", "canceled"})

# https://www.twilio.com/docs/api/errors — codes the fake can answer or report in callbacks.
ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
DEFAULT_SMS_ERRORS = {"undelivered": 30003, "failed": 30005}

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class TwilioApiError(Exception):
    """An error answered in Twilio's JSON shape, so the twilio library raises
    TwilioRestException with `.status` and `.code`."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def http_error(status: int) -> TwilioApiError:
    """Twilio's generic HTTP errors use code 20000 + status (20404, 20429, 20500, 20503)."""
    reasons = {404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
    return TwilioApiError(status, 20000 + status, reasons.get(status, "Service Unavailable"))


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def is_e164(number: str) -> bool:
    return bool(_E164.match(number))


def rfc2822(at: datetime | None) -> str | None:
    """Twilio's v2010 dates: 'Mon, 16 Aug 2010 03:45:01 +0000'."""
    return format_datetime(at) if at else None


def count_segments(body: str) -> int:
    """GSM-7 bodies fit 160 characters (153 per part when split), others 70 (67).
    ASCII stands in for the GSM-7 alphabet: close enough for a fake."""
    single, part = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / part)


@dataclass
class ApiRequest:
    """One request the fake was asked, with the status it answered."""

    method: str
    path: str
    form: list[tuple[str, str]]
    at: datetime
    status: int = 0

    @property
    def params(self) -> dict[str, str]:
        """Form parameters, first value of each (StatusCallbackEvent repeats)."""
        params: dict[str, str] = {}
        for key, value in self.form:
            params.setdefault(key, value)
        return params


@dataclass
class MessageRecord:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    body: str
    messaging_service_sid: str | None
    status_callback: str | None
    date_created: datetime
    status: str = "queued"
    date_updated: datetime | None = None
    date_sent: datetime | None = None
    error_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent),
            "date_updated": rfc2822(self.date_updated or self.date_created),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": ERROR_MESSAGES.get(self.error_code or 0),
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(count_segments(self.body)),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


@dataclass
class CallRecord:
    sid: str
    account_sid: str
    to: str
    from_: str
    date_created: datetime
    direction: str = "outbound-api"
    status: str = "queued"
    url: str | None = None
    twiml: str | None = None
    status_callback: str | None = None
    events: frozenset[str] = frozenset({"completed"})
    machine_detection: str | None = None
    async_amd_status_callback: str | None = None
    answered_by: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    redirects: list[str] = field(default_factory=list)  # Url or Twiml given by later updates

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": self.answered_by,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.end_time or self.start_time or self.date_created),
            "direction": self.direction,
            "duration": None if self.duration is None else str(self.duration),
            "end_time": rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {"recordings": f"{uri}/Recordings.json"},
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }


@dataclass
class QueueRecord:
    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    members: list[tuple[str, datetime]] = field(default_factory=list)  # (call sid, enqueued)

    def to_json(self, now: datetime) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Queues/{self.sid}"
        waits = [int((now - at).total_seconds()) for _, at in self.members]
        return {
            "account_sid": self.account_sid,
            "average_wait_time": sum(waits) // len(waits) if waits else 0,
            "current_size": len(self.members),
            "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_created),
            "friendly_name": self.friendly_name,
            "max_size": 100,
            "sid": self.sid,
            "subresource_uris": {"members": f"{uri}/Members.json"},
            "uri": f"{uri}.json",
        }

    def member_json(self, call_sid: str, now: datetime) -> dict[str, Any]:
        position, enqueued = next(
            (i, at) for i, (sid, at) in enumerate(self.members, start=1) if sid == call_sid
        )
        return {
            "call_sid": call_sid,
            "date_enqueued": rfc2822(enqueued),
            "position": position,
            "queue_sid": self.sid,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Queues/{self.sid}"
            f"/Members/{call_sid}.json",
            "wait_time": int((now - enqueued).total_seconds()),
        }


def list_page(
    key: str, path: str, items: list[dict[str, Any]], params: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """A v2010 list response: page `Page` of `PageSize` items (50 by default), with the
    request's filters carried into the next page's URI as Twilio does. The twilio library
    follows `next_page_uri` until it is null or its `limit` is reached.
    https://www.twilio.com/docs/usage/twilios-response#pagination"""
    paging = {"Page", "PageSize", "PageToken"}
    filters = [(name, value) for name, value in params if name not in paging]
    given = dict(params)
    size = min(max(_int(given.get("PageSize"), 50), 1), 1000)
    page = max(_int(given.get("Page"), 0), 0)
    start = page * size
    shown = items[start : start + size]

    def uri(number: int) -> str:
        return f"{path}?{urlencode([*filters, ('PageSize', str(size)), ('Page', str(number))])}"

    has_next = start + size < len(items)
    return {
        key: shown,
        "end": start + max(len(shown) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if has_next else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page),
    }


def date_filter(params: Sequence[tuple[str, str]], name: str) -> Callable[[datetime | None], bool]:
    """`Name`, `Name>` and `Name<` list filters (DateSent, StartTime, EndTime) as a test.

    Twilio documents these as GMT *dates*: `DateSent>=2026-11-26` means on or after that
    day, and twilio-python sends a datetime as `2026-11-26T02:00:00Z`. The fake compares
    days only, so code that needs the time of day must filter the results itself; a record
    without the date (a message not yet sent, a call not yet started) matches no filter.
    https://www.twilio.com/docs/messaging/api/message-resource#read-multiple-message-resources
    """
    compare = {name: operator.eq, f"{name}>": operator.ge, f"{name}<": operator.le}
    bounds: list[tuple[Callable[[date, date], bool], date]] = []
    for key, value in params:
        if key in compare:
            try:
                bounds.append((compare[key], date.fromisoformat(value[:10])))
            except ValueError:
                # The code Twilio answers for a malformed date is undocumented; 20001 stands in.
                raise TwilioApiError(400, 20001, f"Invalid {key} value: {value}") from None

    def matches(at: datetime | None) -> bool:
        if not bounds:
            return True
        return at is not None and all(op(at.astimezone(UTC).date(), day) for op, day in bounds)

    return matches


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def message_steps(outcome: SmsOutcome, via_service: bool) -> list[str]:
    """Statuses a new message moves through after creation; each one gets a callback.

    No callback for the initial status (queued, or accepted with a Messaging Service):
    https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
    """
    steps = ["queued"] if via_service else []
    if outcome == "failed":
        return [*steps, "failed"]
    return [*steps, "sent"] if outcome == "sent" else [*steps, "sent", outcome]


def call_steps(outcome: CallOutcome) -> list[tuple[str, str]]:
    """(StatusCallbackEvent, CallStatus) pairs a new outbound call moves through.

    The `answered` event reports CallStatus `in-progress`, and every ending is reported as
    the `completed` event: https://www.twilio.com/docs/voice/api/call-resource#statuscallbackevent
    """
    answered = [("initiated", "initiated"), ("ringing", "ringing"), ("answered", "in-progress")]
    return {
        "completed": [*answered, ("completed", "completed")],
        "in-progress": answered,  # stays up until the app hangs up (update Status=completed)
        "no-answer": [*answered[:2], ("completed", "no-answer")],
        "busy": [("initiated", "initiated"), ("completed", "busy")],
        "failed": [("initiated", "initiated"), ("completed", "failed")],
    }[outcome]


def message_status_params(msg: MessageRecord) -> dict[str, str]:
    """A message status callback's form, with both the current and the legacy Sms* names."""
    params = {
        "AccountSid": msg.account_sid,
        "ApiVersion": API_VERSION,
        "MessageSid": msg.sid,
        "MessageStatus": msg.status,
        "SmsSid": msg.sid,
        "SmsStatus": msg.status,
        "To": msg.to,
    }
    if msg.from_:
        params["From"] = msg.from_
    if msg.messaging_service_sid:
        params["MessagingServiceSid"] = msg.messaging_service_sid
    if msg.error_code is not None:
        params["ErrorCode"] = str(msg.error_code)
    return params


def call_status_params(call: CallRecord, sequence: int, at: datetime) -> dict[str, str]:
    """A call status callback's form (https://www.twilio.com/docs/voice/api/call-resource#statuscallback)."""
    params = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": call.status,
        "CallbackSource": "call-progress-events",
        "Called": call.to,
        "Caller": call.from_,
        "Direction": call.direction,
        "From": call.from_,
        "SequenceNumber": str(sequence),
        "Timestamp": rfc2822(at) or "",
        "To": call.to,
    }
    if call.answered_by:
        params["AnsweredBy"] = call.answered_by
    if call.status in CALL_ENDED:
        seconds = call.duration or 0
        params["CallDuration"] = str(seconds)
        params["Duration"] = str(math.ceil(seconds / 60))  # billed minutes
    return params


def conference_json(
    account_sid: str, sid: str, name: str, created: datetime, status: str = "in-progress"
) -> dict[str, Any]:
    """A conference as Twilio shows it: https://www.twilio.com/docs/voice/api/conference-resource"""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Conferences/{sid}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "call_sid_ending_conference": None,
        "date_created": rfc2822(created),
        "date_updated": rfc2822(created),
        "friendly_name": name,
        "reason_conference_ended": None,
        "region": "us1",
        "sid": sid,
        "status": status,
        "subresource_uris": {
            "participants": f"{uri}/Participants.json",
            "recordings": f"{uri}/Recordings.json",
        },
        "uri": f"{uri}.json",
    }


@dataclass(frozen=True)
class ParticipantView:
    """A participant's settings as the participant resource shows them."""

    call_sid: str
    end_on_exit: bool
    muted: bool
    hold: bool
    coaching: bool
    call_sid_to_coach: str | None
    status: str  # queued, connecting, ringing, connected, complete, failed


def participant_json(
    account_sid: str, conference_sid: str, seat: ParticipantView, at: datetime
) -> dict[str, Any]:
    """https://www.twilio.com/docs/voice/api/conference-participant-resource"""
    uri = (
        f"/{API_VERSION}/Accounts/{account_sid}/Conferences/{conference_sid}"
        f"/Participants/{seat.call_sid}.json"
    )
    return {
        "account_sid": account_sid,
        "call_sid": seat.call_sid,
        "call_sid_to_coach": seat.call_sid_to_coach,
        "coaching": seat.coaching,
        "conference_sid": conference_sid,
        "date_created": rfc2822(at),
        "date_updated": rfc2822(at),
        "end_conference_on_exit": seat.end_on_exit,
        "hold": seat.hold,
        "label": None,
        "muted": seat.muted,
        "queue_time": None,
        "start_conference_on_enter": True,
        "status": seat.status,
        "uri": uri,
    }


def form_bool(value: str | None, default: bool) -> bool:
    """Twilio's booleans in a form: "true" or "false" (any case); absent keeps `default`."""
    if value is None:
        return default
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise TwilioApiError(400, 20001, f"Invalid boolean value: {value}")
    return lowered == "true"
