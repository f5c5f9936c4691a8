"""What a voice webhook says, read from Twilio's form fields, and checked once at the edge:
every value cleaned and bounded (`app.telephony.fields`) before it reaches the database or TwiML.

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
from app.telephony import fields
from app.telephony.fields import (
    ADDRESS_LENGTH,
    DIGITS_LENGTH,
    SPEECH_LENGTH,
    STATUS_LENGTH,
    TRANSCRIPTION_LENGTH,
)


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
        """Raises BadWebhookError naming the field when a required one is missing or malformed.

        A caller's own words and number are never refused: cleaned and cut to fit instead."""
        query = query or {}
        # Recording callbacks carry no From/To; the fallback puts them in the URL instead.
        caller = fields.text(form, "From", ADDRESS_LENGTH) or fields.text(
            query, "caller", ADDRESS_LENGTH
        )
        called = fields.text(form, "To", ADDRESS_LENGTH) or fields.text(
            query, "called", ADDRESS_LENGTH
        )
        return cls(
            call_sid=fields.required_sid(form, "CallSid"),
            caller=caller or "",
            called=called or "",
            call_status=fields.text(form, "CallStatus", STATUS_LENGTH) or "",
            digits=fields.text(form, "Digits", DIGITS_LENGTH),
            speech=fields.text(form, "SpeechResult", SPEECH_LENGTH),
            recording_url=fields.url(form, "RecordingUrl"),
            recording_sid=fields.sid(form, "RecordingSid"),
            recording_seconds=fields.seconds(form, "RecordingDuration"),
            transcription_text=fields.text(
                form, "TranscriptionText", TRANSCRIPTION_LENGTH, multiline=True
            ),
            dial_status=fields.text(form, "DialCallStatus", STATUS_LENGTH),
            queue_result=fields.text(form, "QueueResult", STATUS_LENGTH),
            queue_seconds=fields.seconds(form, "QueueTime") or 0,
            duration=fields.seconds(form, "CallDuration"),
        )


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
