"""The requests Twilio sends during one call: signed, with the call's standard parameters, each
logged in the conversation with its HTTP status.

Parameter names follow https://www.twilio.com/docs/usage/webhooks/voice-webhooks and the pages of
the verbs that send them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

import httpx
import phonenumbers

from app.telephony.sandbox.conversation import Conversation, Line
from app.telephony.sandbox.signing import signed_request
from app.telephony.sandbox.twiml_reader import RecordVerb

API_BASE = "https://api.twilio.com/2010-04-01"
TRANSCRIBE_LIMIT_SECONDS = 120  # Twilio transcribes recordings of up to two minutes


@dataclass(frozen=True)
class Request:
    """A request for TwiML; `then` are the callbacks Twilio sends once it is answered."""

    url: str
    method: str = "POST"
    params: Mapping[str, str] = field(default_factory=dict)
    then: tuple[Callback, ...] = ()


@dataclass(frozen=True)
class Callback:
    """A notification whose answer Twilio ignores; it carries exactly `params`."""

    url: str
    method: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class Retries:
    """How Twilio repeats a request that got no answer (refused, reset, timed out) or a 5xx:
    once more by default; with connection overrides (`#rc=5&...`) up to five times, all
    within 15 s. https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides
    The pauses between attempts are the sandbox's choice; Twilio does not document its own."""

    pauses: Sequence[float] = (0.5,)
    budget: float = 15.0  # seconds from the first attempt (Twilio's `tt`, at most 15 s)

    @classmethod
    def overrides(cls) -> Retries:
        """rc=5 within tt=15000: what an operator can set on the number's URLs."""
        return cls(pauses=(0.5, 1.0, 2.0, 4.0, 4.0))


NO_RETRIES = Retries(pauses=())


def new_sid(prefix: str) -> str:
    """A Twilio-shaped id: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class Webhooks:
    """Sends one call's requests to the service as Twilio would send them to its public URL."""

    def __init__(
        self,
        client: httpx.Client,
        conversation: Conversation,
        *,
        public_url: str,
        auth_token: str,
        account_sid: str,
        from_number: str,
        to_number: str,
        direction: str = "inbound",
        retries: Retries = NO_RETRIES,
    ) -> None:
        self._client = client
        self._direction = direction
        self._retries = retries
        self._conversation = conversation
        self._public_url = public_url.rstrip("/")
        self._auth_token = auth_token
        self._account_sid = account_sid
        self._from = from_number
        self._to = to_number
        self.status = "ringing"  # CallStatus: "in-progress" once answered, "completed" at the end

    @property
    def account_sid(self) -> str:
        return self._account_sid

    def url(self, path: str) -> str:
        """The public URL Twilio would call for a path of the service."""
        return self._public_url + path

    def request(self, request: Request) -> httpx.Response | None:
        """Ask for TwiML, then send the callbacks that follow; None when the call cannot go on."""
        response = self._send(request.url, request.method, {**self.call_params(), **request.params})
        if self.status == "ringing":
            self.status = "in-progress"
        for callback in request.then:
            self.notify(callback)
        return response

    def notify(self, callback: Callback) -> None:
        """Send a callback; a failure is only logged (here, in the transcript): the call goes on."""
        self._send(callback.url, callback.method, callback.params, is_callback=True)

    def call_params(self) -> dict[str, str]:
        """The parameters Twilio sends with every voice request."""
        params = {
            "AccountSid": self._account_sid,
            "CallSid": self._conversation.call_sid,
            "From": self._from,
            "To": self._to,
            "Caller": self._from,
            "Called": self._to,
            "CallStatus": self.status,
            "Direction": self._direction,
            "ApiVersion": "2010-04-01",
        }
        for prefix, number in (("From", self._from), ("To", self._to)):
            country = _country_of(number)
            if country:
                params[prefix + "Country"] = country
        return params

    def recording_params(self, seconds: int) -> dict[str, str]:
        """What the <Record> action receives about a new recording."""
        sid = new_sid("RE")
        return {
            "RecordingUrl": f"{API_BASE}/Accounts/{self._account_sid}/Recordings/{sid}",
            "RecordingSid": sid,
            "RecordingDuration": str(seconds),
        }

    def recording_callbacks(
        self, verb: RecordVerb, document_url: str, recording: Mapping[str, str], text: str
    ) -> tuple[Callback, ...]:
        """The recording status and transcription callbacks a <Record> asks for, in that order."""
        callbacks: list[Callback] = []
        about = {key: recording[key] for key in ("RecordingSid", "RecordingUrl")}
        if verb.recording_status_callback:
            # Only these parameters, not the call's usual ones:
            # https://www.twilio.com/docs/voice/twiml/record#recordingstatuscallback
            status = {
                "AccountSid": self._account_sid,
                "CallSid": self._conversation.call_sid,
                **about,
                "RecordingStatus": "completed",
                "RecordingDuration": recording["RecordingDuration"],
                "RecordingChannels": "1",
                "RecordingSource": "RecordVerb",
            }
            url = urljoin(document_url, verb.recording_status_callback)
            callbacks.append(Callback(url, verb.recording_status_callback_method, status))
        if verb.transcribe and verb.transcribe_callback:
            transcribed = int(recording["RecordingDuration"]) <= TRANSCRIBE_LIMIT_SECONDS
            sid = new_sid("TR")
            transcription = {
                **self.call_params(),
                **about,
                "TranscriptionSid": sid,
                "TranscriptionUrl": f"{API_BASE}/Accounts/{self._account_sid}/Transcriptions/{sid}",
                "TranscriptionStatus": "completed" if transcribed else "failed",
            }
            if transcribed:
                transcription["TranscriptionText"] = text
            url = urljoin(document_url, verb.transcribe_callback)
            callbacks.append(Callback(url, "POST", transcription))
        return tuple(callbacks)

    def _send(
        self, url: str, method: str, params: Mapping[str, str], *, is_callback: bool = False
    ) -> httpx.Response | None:
        url = urldefrag(url).url  # connection overrides such as #rc= are Twilio's, never sent
        if url != self._public_url and not url.startswith(
            (self._public_url + "/", self._public_url + "?")
        ):
            self._system(f"cannot request {url}: it is outside {self._public_url}")
            return None
        path = url[len(self._public_url) :] or "/"
        response = self._attempts(method, path, params)
        if response is None:
            return None
        self._conversation.requests.append((path, response.status_code))
        if response.is_success:
            return response
        if is_callback:
            self._system(f"{method} {path} answered HTTP {response.status_code}")
        else:
            # Twilio would log error 11200 and try the number's fallback URL (or say "an
            # application error has occurred"); the sandbox ends the call so the failure shows.
            self._system(f"{method} {path} answered HTTP {response.status_code}; call ends")
        return None

    def _attempts(self, method: str, path: str, params: Mapping[str, str]) -> httpx.Response | None:
        """The request, repeated as `Retries` say while it gets no answer or a 5xx; the last
        answer, or None when none came."""
        started = time.monotonic()
        pauses = list(self._retries.pauses)
        while True:
            response: httpx.Response | None = None
            try:
                response = signed_request(
                    self._client, self._public_url, path, params, self._auth_token, method
                )
                failure = f"answered HTTP {response.status_code}"
            except httpx.TransportError as exc:
                failure = f"failed: {type(exc).__name__}"
            if response is not None and response.status_code < 500:
                return response
            pause = pauses.pop(0) if pauses else None
            if pause is None or time.monotonic() - started + pause > self._retries.budget:
                if response is None:
                    self._system(f"{method} {path} {failure}")
                return response
            self._system(f"{method} {path} {failure}; Twilio tries again")
            time.sleep(pause)  # the network's own time: Twilio waits before repeating

    def _system(self, text: str) -> None:
        self._conversation.lines.append(Line("system", text))


def _country_of(number: str) -> str | None:
    """FromCountry/ToCountry; fictional numbers (such as UK 07700 900xxx) get their country
    code's main country."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return str(region) if region and region != "ZZ" else None
