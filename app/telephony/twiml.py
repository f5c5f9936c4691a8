"""Rendering the engine's actions as TwiML with the twilio library's `VoiceResponse`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from starlette.responses import Response
from twilio.twiml import voice_response
from twilio.twiml.voice_response import VoiceResponse

from app.flows.engine import (
    Action,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Play,
    Record,
    SaveMessage,
    Say,
)
from app.flows.schema import Speech

# What XML 1.0 allows: https://www.w3.org/TR/xml/#charsets. ElementTree escapes markup but
# writes any other character as it is, so a control character read back from a caller's words
# (or a flow file) would make a document Twilio can't parse.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _document(response: VoiceResponse) -> str:
    """The TwiML document, without characters XML forbids (only text and attributes hold any)."""
    return _NOT_XML.sub("", str(response))


@dataclass(frozen=True)
class TurnUrls:
    """Where Twilio should come back to after this turn's verbs."""

    step: str  # Gather/Record/Dial/Enqueue action
    silence: str  # reached when a Gather or Record hears nothing
    hold: str  # Enqueue waitUrl
    recording: str  # recordingStatusCallback
    transcription: str  # transcribeCallback


def render_twiml(actions: list[Action], urls: TurnUrls, speech: Speech) -> str:
    """One TwiML document for one turn of the call."""
    # SaveMessage is a side effect for the service: nothing the caller hears.
    heard = tuple(action for action in actions if not isinstance(action, SaveMessage))
    return _render(heard, urls, speech.voice, speech.language)


@lru_cache(maxsize=4096)
def _render(actions: tuple[Action, ...], urls: TurnUrls, voice: str, language: str) -> str:
    """Memoised: callers at the same turn of the same flow hear the same document, and building
    it with VoiceResponse (ElementTree) costs more than the rest of the turn put together."""
    speech = Speech(voice=voice, language=language)
    response = VoiceResponse()
    for action in actions:
        match action:
            case Say():
                response.say(action.text, voice=speech.voice, language=speech.language)
            case Play():
                response.play(action.url)
            case Gather():
                inputs = " ".join(
                    kind for kind, on in (("dtmf", action.keypad), ("speech", action.speech)) if on
                )
                gather = response.gather(
                    input=inputs,
                    action=urls.step,
                    method="POST",
                    timeout=action.timeout,
                    num_digits=action.num_digits,
                    finish_on_key="#" if action.num_digits is None else None,
                    speech_timeout="auto" if action.speech else None,
                    language=speech.language if action.speech else None,
                    hints=",".join(action.hints) or None,
                )
                for prompt in action.prompt:
                    if isinstance(prompt, Say):
                        gather.say(prompt.text, voice=speech.voice, language=speech.language)
                    else:
                        gather.play(prompt.url)
                # Twilio carries on with the next verb when the Gather hears nothing.
                # https://www.twilio.com/docs/voice/twiml/gather#action
                response.redirect(urls.silence, method="POST")
            case Record():
                response.record(
                    action=urls.step,
                    method="POST",
                    max_length=action.max_seconds,
                    play_beep=True,
                    finish_on_key="#",
                    timeout=5,
                    recording_status_callback=urls.recording,
                    recording_status_callback_event="completed",
                    transcribe=action.transcribe or None,
                    transcribe_callback=urls.transcription if action.transcribe else None,
                )
                # An empty recording does not request the action URL; Twilio moves on instead.
                # https://www.twilio.com/docs/voice/twiml/record#action
                response.redirect(urls.silence, method="POST")
            case Dial():
                response.dial(
                    action.number, action=urls.step, method="POST", timeout=action.timeout
                )
            case Enqueue():
                response.enqueue(
                    action.queue,
                    action=urls.step,
                    method="POST",
                    wait_url=urls.hold,
                    wait_url_method="POST",
                )
            case Hangup():
                response.hangup()
    return _document(response)


def render_hold(message: str, music: str | None, leave: bool, speech: Speech) -> str:
    """The Enqueue waitUrl document: hold message and music, or <Leave> once the wait is over."""
    response = VoiceResponse()
    if leave:
        response.leave()
        return _document(response)
    response.say(message, voice=speech.voice, language=speech.language)
    if music:
        response.play(music)
    else:
        response.pause(length=20)
    return _document(response)


def render_voicemail(prompt: str, done_url: str, recording_url: str, transcription_url: str) -> str:
    """A self-contained voicemail: used when no flow can run (unknown number, database down)."""
    response = VoiceResponse()
    response.say(prompt)
    response.record(
        action=done_url,
        method="POST",
        max_length=180,
        play_beep=True,
        finish_on_key="#",
        recording_status_callback=recording_url,
        recording_status_callback_event="completed",
        transcribe=True,
        transcribe_callback=transcription_url,
    )
    response.say("We didn't hear a message. Please try calling again. Goodbye.")
    response.hangup()
    return _document(response)


def render_goodbye(text: str, speech: Speech | None = None) -> str:
    response = VoiceResponse()
    _say(response, text, speech)
    response.hangup()
    return _document(response)


def render_key_prompt(
    prompt: str, action: str, silence: str, speech: Speech, timeout: int = 8
) -> str:
    """Say `prompt` while listening for one key; `silence` is fetched when none is pressed."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=action, method="POST", timeout=timeout)
    _say(gather, prompt, speech)
    response.redirect(silence, method="POST")  # a silent Gather falls through to the next verb
    return _document(response)


def render_pin_prompt(
    prompt: str, action: str, silence: str, speech: Speech, timeout: int = 10
) -> str:
    """Say `prompt` while listening for a PIN ended by #; `silence` is fetched when none comes."""
    response = VoiceResponse()
    gather = response.gather(action=action, method="POST", timeout=timeout, finish_on_key="#")
    _say(gather, prompt, speech)
    response.redirect(silence, method="POST")
    return _document(response)


def render_connect(prompt: str, caller_id: str, number: str, speech: Speech) -> str:
    """Say `prompt`, then bridge this call to `number`, showing `caller_id`."""
    response = VoiceResponse()
    _say(response, prompt, speech)
    response.dial(caller_id=caller_id).number(number)
    return _document(response)


def _say(verb: VoiceResponse | voice_response.Gather, text: str, speech: Speech | None) -> None:
    if speech is None:
        verb.say(text)
    else:
        verb.say(text, voice=speech.voice, language=speech.language)


def twiml(document: str) -> Response:
    """A TwiML document as the HTTP answer to a webhook."""
    return Response(content=document, media_type="application/xml")
