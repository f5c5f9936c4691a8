"""What a voice webhook says, read from Twilio's form fields, and checked once at the edge.

https://www.twilio.com/docs/voice/twiml#request-parameters
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.flows.engine import (
    CallerInput,
    DialEnded,
    Gathered,
    QueueEnded,
    Recorded,
    Silence,
)
from app.telephony.signature import BadWebhookError


@dataclass(frozen=True)
class VoiceWebhook:
    call_sid: str
    caller: str
    called: str
    call_status: str
    digits: str | None = None
    speech: str | None = None
    recording_url: str | None = None
    recording_sid: str | None = None
    recording_seconds: int | None = None
    transcription_text: str | None = None
    dial_status: str | None = None
    queue_result: str | None = None
    queue_seconds: int = 0
    duration: int | None = None

    @classmethod
    def parse(cls, form: Mapping[str, str], query: Mapping[str, str] | None = None) -> VoiceWebhook:
        """Raises BadWebhookError naming the field when a required one is missing or malformed."""
        query = query or {}
        call_sid = form.get("CallSid", "").strip()
        if not call_sid:
            raise BadWebhookError("CallSid is required")
        return cls(
            call_sid=call_sid,
            # Recording callbacks carry no From/To; the fallback puts them in the URL instead.
            caller=form.get("From") or query.get("caller", ""),
            called=form.get("To") or query.get("called", ""),
            call_status=form.get("CallStatus", ""),
            digits=form.get("Digits") or None,
            speech=form.get("SpeechResult") or None,
            recording_url=form.get("RecordingUrl") or None,
            recording_sid=form.get("RecordingSid") or None,
            recording_seconds=_number(form, "RecordingDuration"),
            transcription_text=form.get("TranscriptionText"),
            dial_status=form.get("DialCallStatus") or None,
            queue_result=form.get("QueueResult") or None,
            queue_seconds=_number(form, "QueueTime") or 0,
            duration=_number(form, "CallDuration"),
        )


def _number(form: Mapping[str, str], name: str) -> int | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadWebhookError(f"{name} must be a whole number, not {value!r}") from None


def heard_from(hook: VoiceWebhook, silence: bool) -> CallerInput:
    """What the caller did, for the step that was waiting: keys, words, a recording, a dial..."""
    if silence:
        return Silence()
    if hook.dial_status is not None:
        return DialEnded(hook.dial_status)
    if hook.queue_result is not None:
        return QueueEnded(hook.queue_result)
    if hook.recording_url is not None:
        return Recorded(hook.recording_url, hook.recording_seconds or 0)
    if hook.digits is not None or hook.speech is not None:
        return Gathered(digits=hook.digits, speech=hook.speech)
    return Silence()
