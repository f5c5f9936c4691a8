"""TwiML for the console's calls: the whisper on the PA's phone, the conference where the PA
and the caller meet, and goodbyes. Rendered with the twilio library's `VoiceResponse`.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from app.flows.schema import Speech

WHISPER_TIMEOUT = 8  # seconds to press 1


def conference_name(entry_id: int) -> str:
    """One room per queue entry: the PA and that caller, nobody else."""
    return f"nightdesk-entry-{entry_id}"


def render_whisper(client_name: str, accept_url: str, silence_url: str, speech: Speech) -> str:
    """What the PA hears on picking up: whose caller it is, and 1 to take it. Only a key
    connects, so a voicemail box that answers the PA's phone never gets the caller."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, action=accept_url, method="POST", timeout=WHISPER_TIMEOUT
    )
    gather.say(
        f"{client_name} caller. Press 1 to take the call.",
        voice=speech.voice, language=speech.language,
    )  # fmt: skip
    response.redirect(silence_url, method="POST")  # no key: the Gather falls through to here
    return str(response)


def render_pa_joins(entry_id: int, status_callback: str, speech: Speech) -> str:
    """The PA pressed 1: into the entry's conference. Its join event tells us the PA is there,
    and only then is the caller moved in; the room closes when the PA leaves."""
    response = VoiceResponse()
    response.say("Connecting you now.", voice=speech.voice, language=speech.language)
    dial = response.dial()
    dial.conference(
        conference_name(entry_id), start_conference_on_enter=True,
        end_conference_on_exit=True, beep=False, status_callback=status_callback,
        status_callback_method="POST", status_callback_event="join leave end",
    )  # fmt: skip
    return str(response)


def render_caller_joins(entry_id: int, after_url: str, joined_url: str) -> str:
    """The caller's new TwiML once taken out of the queue: into the PA's conference (their join
    event, to `joined_url`, names the conference), and when it ends, on to `after_url` (a
    goodbye)."""
    response = VoiceResponse()
    dial = response.dial(action=after_url, method="POST")
    dial.conference(
        conference_name(entry_id), start_conference_on_enter=True,
        end_conference_on_exit=True, beep=False, status_callback=joined_url,
        status_callback_method="POST", status_callback_event="join",
    )  # fmt: skip
    return str(response)


def render_transfer_whisper(
    client_name: str, accept_url: str, silence_url: str, speech: Speech
) -> str:
    """What the on-call contact hears on picking up: a transfer, whose, and 1 to take it; only
    a key puts them through, so their voicemail never gets the caller."""
    response = VoiceResponse()
    gather = response.gather(
        num_digits=1, action=accept_url, method="POST", timeout=WHISPER_TIMEOUT
    )
    gather.say(
        f"Nightdesk transfer for {client_name}, press 1 to take the caller.",
        voice=speech.voice, language=speech.language,
    )  # fmt: skip
    response.redirect(silence_url, method="POST")
    return str(response)


def render_contact_joins(entry_id: int, status_callback: str, speech: Speech) -> str:
    """The contact pressed 1: into the PA's conference, where the PA briefs them while the
    caller is on hold. Their leaving doesn't end it until the PA hands the caller over."""
    response = VoiceResponse()
    response.say("Connecting you to the assistant.", voice=speech.voice, language=speech.language)
    dial = response.dial()
    dial.conference(
        conference_name(entry_id), start_conference_on_enter=True,
        end_conference_on_exit=False, beep=False, status_callback=status_callback,
        status_callback_method="POST", status_callback_event="join leave",
    )  # fmt: skip
    return str(response)


def render_say_goodbye(text: str, speech: Speech) -> str:
    response = VoiceResponse()
    response.say(text, voice=speech.voice, language=speech.language)
    response.hangup()
    return str(response)
