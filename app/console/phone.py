"""The PA's phone, through Twilio's REST API (the twilio library; the local fake in tests and
the sandbox): ring the PA, move the caller from the queue into their conference, hang up.

Blocking, like the library: routes call these on a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import requests
from twilio.base import values
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

log = logging.getLogger("nightdesk.console")

RING_SECONDS = 20  # then the caller goes back to waiting for the next PA
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


class PhoneError(Exception):
    """Twilio refused or could not be reached; the message says what happened."""


@dataclass(frozen=True)
class Ring:
    """Calling a PA's phone for a caller."""

    to: str  # the PA's phone
    from_: str  # the client's number the caller rang (a number of ours Twilio may call from)
    url: str  # the whisper: TwiML Twilio fetches when the PA picks up
    status_callback: str


class Phone(Protocol):
    def ring(self, ring: Ring) -> str:
        """Calls the PA; returns the call's sid."""
        ...

    def move_caller(self, queue_name: str, call_sid: str, url: str) -> None:
        """Takes the caller out of the named queue and on to the TwiML at `url`."""
        ...

    def hang_up(self, call_sid: str) -> None: ...

    def play(self, call_sid: str, twiml: str) -> None:
        """New TwiML for a call in progress (e.g. telling the PA the caller has gone)."""
        ...

    def redirect(self, call_sid: str, url: str) -> None:
        """Sends a call in progress to the TwiML at `url` (out of any conference it is in)."""
        ...

    def hold(self, conference_sid: str, call_sid: str, held: bool) -> None:
        """Puts a participant of the conference on hold (music, hears nothing), or back."""
        ...

    def keep_conference(self, conference_sid: str, call_sid: str) -> None:
        """This participant's leaving no longer ends the conference."""
        ...

    def leave_with(self, conference_sid: str, caller: str, contact: str) -> None:
        """The caller comes off hold with the contact, whose leaving now ends the conference."""
        ...

    def hand_over(self, conference_sid: str, caller: str, contact: str, pa: str) -> None:
        """The PA leaves the caller with the contact (`leave_with`), and is removed."""
        ...

    def add_participant(self, conference_sid: str, join: Join) -> str:
        """Rings `join.to` straight into the conference; returns the new call's sid."""
        ...


@dataclass(frozen=True)
class Join:
    """Someone rung into a conference as a participant (a supervisor listening, whispering or
    joining), with Twilio's participant settings."""

    to: str
    from_: str
    muted: bool
    coaching: bool
    call_sid_to_coach: str | None


class TwilioPhone:
    """`Phone` through the twilio library's Client."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._queues: dict[str, str] = {}  # friendly name -> sid; a queue's sid never changes
        self._lock = threading.Lock()

    def ring(self, ring: Ring) -> str:
        with _twilio_errors():
            call = self._client.calls.create(
                to=ring.to, from_=ring.from_, url=ring.url, method="POST",
                status_callback=ring.status_callback, status_callback_method="POST",
                status_callback_event=CALL_EVENTS, timeout=RING_SECONDS,
            )  # fmt: skip
        return str(call.sid)

    def move_caller(self, queue_name: str, call_sid: str, url: str) -> None:
        """https://www.twilio.com/docs/voice/api/member-resource#update-a-member-resource"""
        with _twilio_errors():
            queue_sid = self._queue_sid(queue_name)
            self._client.queues(queue_sid).members(call_sid).update(url=url, method="POST")

    def hang_up(self, call_sid: str) -> None:
        with _twilio_errors():
            self._client.calls(call_sid).update(status="completed")

    def play(self, call_sid: str, twiml: str) -> None:
        with _twilio_errors():
            self._client.calls(call_sid).update(twiml=twiml)

    def redirect(self, call_sid: str, url: str) -> None:
        with _twilio_errors():
            self._client.calls(call_sid).update(url=url, method="POST")

    # Conference participants: https://www.twilio.com/docs/voice/api/conference-participant-resource

    def hold(self, conference_sid: str, call_sid: str, held: bool) -> None:
        with _twilio_errors():
            self._client.conferences(conference_sid).participants(call_sid).update(hold=held)

    def keep_conference(self, conference_sid: str, call_sid: str) -> None:
        participants = self._client.conferences(conference_sid).participants
        with _twilio_errors():
            participants(call_sid).update(end_conference_on_exit=False)

    def leave_with(self, conference_sid: str, caller: str, contact: str) -> None:
        participants = self._client.conferences(conference_sid).participants
        with _twilio_errors():
            participants(caller).update(hold=False)
            participants(contact).update(end_conference_on_exit=True)

    def hand_over(self, conference_sid: str, caller: str, contact: str, pa: str) -> None:
        self.leave_with(conference_sid, caller, contact)
        # Set when the contact joined; again here, or the PA's leaving ends the conference.
        self.keep_conference(conference_sid, pa)
        with _twilio_errors():
            self._client.conferences(conference_sid).participants(pa).delete()

    def add_participant(self, conference_sid: str, join: Join) -> str:
        coach = join.call_sid_to_coach if join.call_sid_to_coach is not None else values.unset
        with _twilio_errors():
            participant = self._client.conferences(conference_sid).participants.create(
                from_=join.from_, to=join.to, muted=join.muted, coaching=join.coaching,
                call_sid_to_coach=coach, beep="false", end_conference_on_exit=False,
                timeout=RING_SECONDS,
            )  # fmt: skip
        return str(participant.call_sid)

    def _queue_sid(self, name: str) -> str:
        with self._lock:
            known = self._queues.get(name)
        if known is not None:
            return known
        for queue in self._client.queues.stream(page_size=100):
            if queue.friendly_name == name:
                with self._lock:
                    self._queues[name] = str(queue.sid)
                return str(queue.sid)
        raise PhoneError(f"Twilio has no queue called {name!r}: has the caller hung up?")


@contextlib.contextmanager
def _twilio_errors() -> Iterator[None]:
    """What the twilio library raises, as a PhoneError saying what happened."""
    try:
        yield
    except (TwilioException, requests.RequestException) as error:
        status = getattr(error, "status", None)
        text = getattr(error, "msg", None) or type(error).__name__
        log.warning("twilio_refused", extra={"status": status, "error": str(text)[:200]})
        raise PhoneError(f"Twilio {status or 'unreachable'}: {text}") from error
