"""A simulated caller: plays one phone call against a Nightdesk service exactly as Twilio would.

It sends signed webhooks, runs the TwiML it gets back verb by verb, answers <Gather> and <Record>
from a script, and sends the callbacks Twilio sends. The tests, `nightdesk call` and the benchmarks
use it, so a flow can be tried without a phone. Behaviour follows
https://www.twilio.com/docs/voice/twiml. Callbacks Twilio sends asynchronously (recording,
transcription, call status) are sent at once in a fixed order, so runs need no sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Literal
from urllib.parse import urljoin

import httpx

from app.telephony.sandbox.conversation import (
    CallerInput,
    Conversation,
    HangUp,
    Line,
    Press,
    Say,
    Silence,
    Speaker,
    describe,
)
from app.telephony.sandbox.signing import sign, signed_post
from app.telephony.sandbox.switchboard import (
    ConferenceEnded,
    Ended,
    LineEvent,
    Redirected,
    Switchboard,
)
from app.telephony.sandbox.twiml_reader import (
    ConferenceNoun,
    DialVerb,
    EnqueueVerb,
    GatherVerb,
    HangupVerb,
    LeaveVerb,
    PauseVerb,
    PlayVerb,
    RecordVerb,
    RedirectVerb,
    RejectVerb,
    SayVerb,
    TwimlError,
    UnknownVerb,
    Verb,
    parse_twiml,
)
from app.telephony.sandbox.webhooks import (
    NO_RETRIES,
    Callback,
    Request,
    Retries,
    Webhooks,
    new_sid,
)

__all__ = [
    "Conversation",
    "HangUp",
    "Line",
    "Press",
    "Retries",
    "Say",
    "Silence",
    "SimulatedCaller",
    "sign",
    "signed_post",
]

TransferOutcome = Literal["answer", "no-answer", "busy"]
QueueOutcome = Literal["bridged", "timeout"]

TALK_SECONDS = 42  # how long a bridged transfer or PA conversation lasts
QUEUE_ROUND_SECONDS = 30  # simulated length of one play of the hold TwiML
PLAY_SECONDS = 5  # simulated length of a <Play>ed file


class _Stop(Enum):
    END = "the call ends"
    LEAVE = "the caller leaves the queue"
    ERROR = "a webhook failed"


_Outcome = Request | _Stop | None  # None: carry on with the next verb


@dataclass(frozen=True)
class _Document:
    url: str
    verbs: list[Verb]


class SimulatedCaller:
    """One inbound call driven by a script of caller inputs; `run()` plays it once."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        public_url: str,
        auth_token: str,
        account_sid: str,
        from_number: str,
        to_number: str,
        script: Iterable[CallerInput] = (),
        call_sid: str | None = None,
        transfers: TransferOutcome = "no-answer",
        queue: QueueOutcome = "timeout",
        max_turns: int = 60,
        max_queue_rounds: int = 20,
        voice_path: str = "/twilio/voice",
        status_callback_path: str | None = "/twilio/voice/status",
        switchboard: Switchboard | None = None,
        hold_wait: float = QUEUE_ROUND_SECONDS,
        talk_wait: float = 600.0,
        direction: str = "inbound",
        fallback_path: str | None = None,
        retries: Retries = NO_RETRIES,
        listening: float = 0.0,
    ) -> None:
        """With a `switchboard` the call lives in real time beside Twilio's other calls: it waits
        in a queue until someone takes it out (each play of the hold music waits up to
        `hold_wait` real seconds for that), and stays in a conference until it ends (up to
        `talk_wait` seconds). Without one, queues and conferences are decided by `queue`."""
        self._script: deque[CallerInput] = deque(script)
        self._transfers = transfers
        self._queue = queue
        self._max_turns = max_turns
        self._max_queue_rounds = max_queue_rounds
        self._voice_path = voice_path
        self._status_callback_path = status_callback_path
        self._switchboard = switchboard
        self._hold_wait = hold_wait
        self._talk_wait = talk_wait
        self._fallback_path = fallback_path
        self._listening = listening  # real seconds before each TwiML request (0: none)
        self._conversation = Conversation(call_sid=call_sid or new_sid("CA"))
        self._webhooks = Webhooks(
            client,
            self._conversation,
            public_url=public_url,
            auth_token=auth_token,
            account_sid=account_sid,
            from_number=from_number,
            to_number=to_number,
            direction=direction,
            retries=retries,
        )
        self._from, self._to = from_number, to_number
        self._answered = False
        self._final_status = "completed"
        self._elapsed = 0
        self._turns = 0
        self._started = False

    def run(self) -> Conversation:
        """Place the call, follow the TwiML until someone hangs up, and return what happened."""
        if self._started:
            raise RuntimeError("a SimulatedCaller plays one call; make another for the next")
        self._started = True
        step: _Outcome = Request(self._webhooks.url(self._voice_path))
        while isinstance(step, Request):
            document = self._fetch(step)
            if document is None:
                break
            # A document that runs out of verbs ends the call (step None), as on Twilio.
            step = self._play(document, in_queue=False)
        self._end_call()
        return self._conversation

    # -- the verbs -------------------------------------------------------------------------

    def _play(self, document: _Document, *, in_queue: bool) -> _Outcome:
        for verb in document.verbs:
            outcome = self._perform(verb, document.url, in_queue=in_queue)
            if outcome is not None:
                return outcome
        return None

    def _perform(self, verb: Verb, url: str, *, in_queue: bool) -> _Outcome:
        if not isinstance(verb, RejectVerb):
            self._answered = True
        match verb:
            case SayVerb() | PlayVerb() | PauseVerb():
                self._hear(verb)
                return None
            case GatherVerb():
                return self._gather(verb, url)
            case RecordVerb() if not in_queue:
                return self._record(verb, url)
            case DialVerb() if not in_queue:
                return self._dial(verb, url)
            case EnqueueVerb() if not in_queue:
                return self._enqueue(verb, url)
            case RedirectVerb():
                return Request(urljoin(url, verb.url), verb.method)
            case HangupVerb():
                return _Stop.END
            case LeaveVerb():
                return _Stop.LEAVE if in_queue else None  # <Leave> only means something on hold
            case RejectVerb():
                return self._reject(verb)
        # Unknown verbs, and verbs Twilio refuses in hold TwiML (Twilio would raise an error).
        name = verb.name if isinstance(verb, UnknownVerb) else type(verb).__name__[:-4]
        self._line("system", f"(ignored <{name}>{' in hold TwiML' if in_queue else ''})")
        return None

    def _hear(self, prompt: SayVerb | PlayVerb | PauseVerb) -> None:
        match prompt:
            case SayVerb(text=text):
                self._line("nightdesk", text)
                self._elapsed += _speaking_seconds(text)
            case PlayVerb(url=url):
                self._line("nightdesk", f"(plays {url})")
                self._elapsed += PLAY_SECONDS
            case PauseVerb(length=length):
                self._elapsed += length

    def _gather(self, verb: GatherVerb, url: str) -> _Outcome:
        for prompt in verb.prompts:
            self._hear(prompt)
        action = _resolve(url, verb.action)
        item = self._next_input()
        if isinstance(item, HangUp):
            return self._caller_hangs_up()  # Twilio does not request the action on a hang-up
        if isinstance(item, Press) and "dtmf" in verb.input:
            self._line("caller", describe(item))
            digits, finished_on_key = _split_finish_key(item.digits, verb.finish_on_key)
            if digits:  # the finish key alone is no input
                return Request(
                    action, verb.method, {"Digits": digits, "FinishedOnKey": finished_on_key}
                )
        elif isinstance(item, Say) and "speech" in verb.input:
            self._line("caller", describe(item))
            self._elapsed += _speaking_seconds(item.text)
            return Request(action, verb.method, {"SpeechResult": item.text, "Confidence": "0.9"})
        else:
            # Keys during a speech-only <Gather>, or words during a keypad-only one, go unheard.
            unheard = " (not listened for)" if isinstance(item, Press | Say) else ""
            self._line("caller", describe(item) + unheard)
        # No input: Twilio moves on to the next verb, unless actionOnEmptyResult asks otherwise.
        # https://www.twilio.com/docs/voice/twiml/gather#action
        self._elapsed += verb.timeout
        return Request(action, verb.method) if verb.action_on_empty_result else None

    def _record(self, verb: RecordVerb, url: str) -> _Outcome:
        self._line("nightdesk", f"(recording, up to {verb.max_length} s)")
        item = self._next_input()
        if not isinstance(item, Say):
            # An empty recording: "Twilio will not make a request to the action URL" and goes on
            # with the next verb (https://www.twilio.com/docs/voice/twiml/record#action). A caller
            # hanging up without a word leaves the same empty recording, so no request either.
            if isinstance(item, HangUp):
                return self._caller_hangs_up()
            self._line("caller", describe(item))
            self._elapsed += verb.timeout
            return None
        self._line("caller", describe(item))
        seconds = min(max(1, len(item.text.split()) // 2), verb.max_length)
        self._elapsed += seconds
        params = self._webhooks.recording_params(seconds)
        ending = self._end_recording(verb)
        if ending:
            params["Digits"] = ending
        callbacks = self._webhooks.recording_callbacks(verb, url, params, item.text)
        action = Request(_resolve(url, verb.action), verb.method, params, then=callbacks)
        if self._webhooks.status == "completed":
            # After a hang-up Twilio still requests the action URL with the recording, and
            # ignores the TwiML it returns (https://www.twilio.com/docs/voice/twiml/record#action).
            self._webhooks.request(action)
            return _Stop.END
        return action

    def _end_recording(self, verb: RecordVerb) -> str | None:
        """A recording ends when the caller hangs up ("hangup") or presses a finish key (the key),
        if the script says so next; otherwise after `timeout` seconds of silence (None)."""
        ending = self._script[0] if self._script else None
        if isinstance(ending, HangUp):
            self._script.popleft()
            self._caller_hangs_up()
            return "hangup"
        key = ending.digits[:1] if isinstance(ending, Press) else ""
        if key and key in verb.finish_on_key:
            self._script.popleft()
            self._line("caller", describe(Press(key)))
            return key
        self._elapsed += verb.timeout
        return None

    def _dial(self, verb: DialVerb, url: str) -> _Outcome:
        if verb.conference is not None:
            return self._conference(verb, verb.conference, url)
        self._line("nightdesk", f"(dialling {verb.target})")
        params = {"DialCallSid": new_sid("CA")}
        match self._transfers:
            case "answer":
                self._line("system", f"({verb.target} answers; they talk for {TALK_SECONDS} s)")
                self._elapsed += TALK_SECONDS
                params |= {"DialCallStatus": "completed", "DialCallDuration": str(TALK_SECONDS)}
            case "busy":
                self._line("system", f"({verb.target} is busy)")
                params["DialCallStatus"] = "busy"
            case "no-answer":
                self._line("system", f"(no answer from {verb.target} in {verb.timeout} s)")
                self._elapsed += verb.timeout
                params["DialCallStatus"] = "no-answer"
        if verb.action is None:
            return None  # Twilio goes on with the next verb (after the bridge, if answered)
        return Request(urljoin(url, verb.action), verb.method, params)

    def _conference(self, verb: DialVerb, room: ConferenceNoun, url: str) -> _Outcome:
        """In a conference until it ends, the call is ended or redirected; then the Dial action.
        https://www.twilio.com/docs/voice/twiml/conference"""
        self._line("nightdesk", f"(joins the conference {room.name})")
        sid = self._conversation.call_sid
        board = self._switchboard
        conference_sid = (
            board.join_conference(sid, room.name, room.end_on_exit) if board else new_sid("CF")
        )
        self._conference_event(room, url, conference_sid, "join")
        if board is None:
            self._line("system", f"(they talk for {TALK_SECONDS} s)")
            self._elapsed += TALK_SECONDS
        else:
            event = board.next_event(sid, self._talk_wait)
            match event:
                case Redirected():
                    return self._redirected(event, url)
                case Ended():
                    self._line("system", "(the call is ended)")
                    return _Stop.END
                case ConferenceEnded():
                    self._line("system", "(the conference ends)")
                case None:
                    self._line("system", f"(hangs up after {self._talk_wait:g} s)")
                    return self._caller_hangs_up()
        self._conference_event(room, url, conference_sid, "leave")
        params = {"DialCallStatus": "completed", "DialCallSid": new_sid("CA")}
        return Request(urljoin(url, verb.action), verb.method, params) if verb.action else None

    def _conference_event(
        self, room: ConferenceNoun, url: str, conference_sid: str, event: str
    ) -> None:
        """The conference status callback Twilio sends for this participant, if it asked.
        https://www.twilio.com/docs/voice/twiml/conference#attributes-statusCallback-parameters"""
        if room.status_callback is None or event not in room.status_callback_events:
            return
        params = {
            "AccountSid": self._webhooks.account_sid,
            "CallSid": self._conversation.call_sid,
            "ConferenceSid": conference_sid,
            "FriendlyName": room.name,
            "StatusCallbackEvent": f"participant-{event}",
            "EndConferenceOnExit": "true" if room.end_on_exit else "false",
            "Muted": "false",
            "Hold": "false",
        }
        callback = Callback(urljoin(url, room.status_callback), room.status_callback_method, params)
        self._webhooks.notify(callback)

    def _redirected(self, event: Redirected, url: str) -> _Outcome:
        """New instructions for the call, from the REST API: a URL to fetch, or TwiML to run."""
        if event.twiml is not None:
            try:
                verbs = parse_twiml(event.twiml)
            except TwimlError as exc:
                self._line("system", f"the TwiML it was sent is not usable: {exc}; call ends")
                return _Stop.END
            return self._play(_Document(url, verbs), in_queue=False)
        return Request(urljoin(url, event.url or ""), event.method)

    def _wait_in_line(self, verb: EnqueueVerb, url: str, board: Switchboard) -> _Outcome:
        """Wait in the switchboard's queue, playing the hold TwiML, until a PA takes the caller
        out (a REST redirect), the hold TwiML says <Leave/>, or the call is ended."""
        sid = self._conversation.call_sid
        queue_sid = board.wait_in_queue(sid, verb.queue_name, self._from, self._to)
        result, queue_time = "hangup", 0
        for round_number in range(self._max_queue_rounds):
            queue_time = round_number * QUEUE_ROUND_SECONDS
            outcome = self._hold(verb, url, queue_sid, queue_time)
            if outcome is _Stop.ERROR:
                return outcome
            if outcome is _Stop.LEAVE:
                board.leave_queue(sid)
                result = "leave"
                break
            if outcome is _Stop.END:
                break
            event: LineEvent | None = board.next_event(sid, self._hold_wait)
            if isinstance(event, Redirected):
                self._line("system", "(taken out of the queue)")
                # Twilio reports how the wait ended and runs the new instructions, not the
                # action's: https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action
                if verb.action:
                    self._queue_result(verb, url, queue_sid, queue_time, "redirected")
                return self._redirected(event, url)
            if isinstance(event, Ended):
                self._caller_hangs_up()
                break
            self._elapsed += QUEUE_ROUND_SECONDS
        else:
            queue_time = self._max_queue_rounds * QUEUE_ROUND_SECONDS
            self._line("system", f"(nobody answers in {queue_time} s)")
            self._caller_hangs_up()
        if result == "hangup":
            self._webhooks.status = "completed"
            if verb.action:
                self._queue_result(verb, url, queue_sid, queue_time, result)
            return _Stop.END
        action = _resolve(url, verb.action)
        params = {"QueueResult": result, "QueueSid": queue_sid, "QueueTime": str(queue_time)}
        return Request(action, verb.method, params) if verb.action else None

    def _queue_result(
        self, verb: EnqueueVerb, url: str, queue_sid: str, queue_time: int, result: str
    ) -> None:
        """The Enqueue action, whose TwiML Twilio ignores (the call is over, or elsewhere)."""
        params = {"QueueResult": result, "QueueSid": queue_sid, "QueueTime": str(queue_time)}
        self._webhooks.request(Request(_resolve(url, verb.action), verb.method, params))

    def _enqueue(self, verb: EnqueueVerb, url: str) -> _Outcome:
        """Hold, replaying the wait TwiML, until it says <Leave/>, a PA answers, or someone hangs
        up; then request the Enqueue action: https://www.twilio.com/docs/voice/twiml/enqueue"""
        self._line("nightdesk", f"(queues the caller in {verb.queue_name or 'a queue'})")
        if self._switchboard is not None:
            return self._wait_in_line(verb, url, self._switchboard)
        queue_sid = new_sid("QU")
        result = "hangup"
        queue_time = 0
        for round_number in range(self._max_queue_rounds):
            queue_time = round_number * QUEUE_ROUND_SECONDS
            outcome = self._hold(verb, url, queue_sid, queue_time)
            if outcome is _Stop.ERROR:
                return outcome
            if outcome is _Stop.LEAVE:
                result = "leave"
                break
            if outcome is _Stop.END:
                break  # the caller hung up, or the hold TwiML said <Hangup/>
            if self._queue == "bridged":
                self._line("system", f"(a PA answers; they talk for {TALK_SECONDS} s)")
                self._elapsed += TALK_SECONDS
                result = "bridged"
                break
            self._elapsed += QUEUE_ROUND_SECONDS
        else:
            queue_time = self._max_queue_rounds * QUEUE_ROUND_SECONDS
            self._line("system", f"(nobody answers in {queue_time} s)")
            self._caller_hangs_up()
        action = Request(
            _resolve(url, verb.action),
            verb.method,
            {"QueueResult": result, "QueueSid": queue_sid, "QueueTime": str(queue_time)},
        )
        if result == "hangup":
            self._webhooks.status = "completed"
            if verb.action:
                self._webhooks.request(action)  # Twilio reports it, but the call is over
            return _Stop.END
        return action if verb.action else None  # without an action, the next verb follows

    def _hold(self, verb: EnqueueVerb, url: str, queue_sid: str, queue_time: int) -> _Outcome:
        """Play the hold TwiML once; Twilio requests the waitUrl again each time it runs out."""
        if verb.wait_url is None:
            return None  # Twilio's own hold music
        params = {
            "QueueSid": queue_sid,
            "QueueTime": str(queue_time),
            "QueuePosition": "1",
            "AvgQueueTime": str(queue_time),
            "CurrentQueueSize": "1",
            "MaxQueueSize": "100",
        }
        step: _Outcome = Request(urljoin(url, verb.wait_url), verb.wait_url_method, params)
        while isinstance(step, Request):  # a <Redirect> or <Gather> action on hold stays on hold
            document = self._fetch(step)
            if document is None:
                return _Stop.ERROR
            step = self._play(document, in_queue=True)
        return step

    def _reject(self, verb: RejectVerb) -> _Outcome:
        # An unanswered call ends "busy" or "no-answer", by reason:
        # https://www.twilio.com/docs/voice/twiml/reject
        if not self._answered:
            self._final_status = "busy" if verb.reason == "busy" else "no-answer"
            self._line("system", f"(call rejected: {self._final_status})")
        return _Stop.END

    def _caller_hangs_up(self) -> _Stop:
        self._line("caller", describe(HangUp()))
        self._webhooks.status = "completed"
        return _Stop.END

    def _next_input(self) -> CallerInput | None:
        return self._script.popleft() if self._script else None

    # -- the wire --------------------------------------------------------------------------

    def _fetch(self, request: Request) -> _Document | None:
        """Request the next TwiML document; None when the call cannot go on."""
        if self._turns >= self._max_turns:
            self._line("system", f"stopped after {self._max_turns} webhooks: is the flow looping?")
            return None
        self._turns += 1
        if self._listening:  # a caller in real time (the fault suite), not a simulated one
            time.sleep(self._listening)
        response = self._webhooks.request(request)
        if response is None and self._fallback_path is not None:
            # "If Twilio is unable to retrieve or execute TwiML from your web server, a request
            # is immediately made to the number's Fallback URL", with the error and its URL.
            # https://www.twilio.com/docs/usage/security/availability-reliability
            fallback = self._webhooks.url(self._fallback_path)
            self._line("system", f"{request.url} failed; Twilio requests the fallback URL")
            error = {"ErrorCode": "11200", "ErrorUrl": request.url}
            request = Request(fallback, "POST", error)
            response = self._webhooks.request(request)
        if response is None:
            return None
        try:
            return _Document(request.url, parse_twiml(response.text))
        except TwimlError as exc:
            self._line("system", f"{request.url} returned no usable TwiML: {exc}; call ends")
            return None

    def _end_call(self) -> None:
        """Hang up and send the call status callback Twilio sends when the number has one."""
        self._line("system", "call ended")
        if self._switchboard is not None:
            self._switchboard.hang_up(self._conversation.call_sid)
        self._webhooks.status = self._final_status
        duration = self._elapsed if self._answered else 0
        self._conversation.duration = duration
        if self._status_callback_path is None:
            return
        params = {
            **self._webhooks.call_params(),
            "CallDuration": str(duration),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        }
        url = self._webhooks.url(self._status_callback_path)
        self._webhooks.notify(Callback(url, "POST", params))

    def _line(self, who: Speaker, text: str) -> None:
        self._conversation.lines.append(Line(who, text))


def _speaking_seconds(text: str) -> int:
    return max(1, round(len(text.split()) / 2.5))


def _split_finish_key(keys: str, finish_on_key: str) -> tuple[str, str]:
    """Digits entered before the finish key, and the key (Twilio's FinishedOnKey) or ""."""
    for index, key in enumerate(keys):
        if key in finish_on_key:
            return keys[:index], key
    return keys, ""


def _resolve(document_url: str, url: str | None) -> str:
    """An action URL as Twilio resolves it; without one, Twilio requests the current document."""
    return urljoin(document_url, url) if url else document_url
