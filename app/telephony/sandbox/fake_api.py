"""The fake Twilio's REST resources (Messages, Calls, Queues and their members, recordings'
media) and their state, as an ASGI app (`.app`) that needs no server: `FakeTwilio` serves it
on loopback.

Reference: https://www.twilio.com/docs/messaging/api/message-resource,
https://www.twilio.com/docs/voice/api/call-resource, .../voice/api/queue-resource and
.../voice/api/member-resource.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.telephony.sandbox.conversation import CallerInput
from app.telephony.sandbox.fake_callbacks import Callback, CallbackSender, Deliver
from app.telephony.sandbox.fake_http import FakeHttpEdge, Form
from app.telephony.sandbox.fake_lines import Lines, Room, Seat
from app.telephony.sandbox.fake_parties import Parties
from app.telephony.sandbox.fake_resources import (
    API_VERSION,
    CALL_ENDED,
    CallOutcome,
    CallRecord,
    MessageRecord,
    ParticipantView,
    QueueRecord,
    SmsOutcome,
    TwilioApiError,
    call_status_params,
    call_steps,
    conference_json,
    date_filter,
    form_bool,
    http_error,
    is_e164,
    list_page,
    message_status_params,
    message_steps,
    new_sid,
    participant_json,
)
from app.telephony.sandbox.switchboard import (
    ConferenceEnded,
    Ended,
    LineEvent,
    Redirected,
    event_to_json,
)

ACCOUNT = f"/{API_VERSION}/Accounts/{{account_sid}}"


@dataclass(frozen=True)
class CallScript:
    outcome: CallOutcome
    answered_by: str | None
    duration: int


class FakeApi(FakeHttpEdge):
    """Twilio's REST resources in memory. Thread-safe: handlers run on the server's event
    loop, status steps on the callback thread, and tests read and script from theirs."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        deliver: Deliver | None,
        callback_delay: float,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(account_sid, auth_token, clock)
        self.callback_sender = CallbackSender(auth_token, deliver, callback_delay)
        self.lines = Lines(self._lock)
        self.parties = Parties(self, account_sid, auth_token)
        # Told of each message as it is created: `nightdesk demo` prints what it would send.
        self.on_message: Callable[[MessageRecord], None] | None = None
        self.on_call: Callable[[CallRecord], None] | None = None
        self.reset()
        self.app = Starlette(routes=self._routes())

    def reset(self) -> None:
        """Forgets every record and script (a fake shared by several tests), once the
        status changes already due have been sent."""
        self.callback_sender.wait_idle()
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._messages: dict[str, MessageRecord] = {}
            self._calls: dict[str, CallRecord] = {}
            self._queues: dict[str, QueueRecord] = {}
            self._invalid: set[str] = set()
            self._unsubscribed: set[str] = set()
            self._sms: dict[str, tuple[SmsOutcome, int | None]] = {}
            self._call_scripts: dict[str, CallScript] = {}
            self._recordings: dict[str, bytes] = {}
            self._sequence: dict[str, int] = {}
            self._party_scripts: dict[str, list[CallerInput]] = {}
            # Participants added through the REST API, by call sid: the conference they join
            # once their phone answers, and how they sit in it.
            self._joining: dict[str, tuple[str, Seat]] = {}
        self.lines.reset()
        self.callback_sender.clear()

    def _routes(self) -> list[Route]:
        members = f"{ACCOUNT}/Queues/{{queue}}/Members"
        conferences = f"{ACCOUNT}/Conferences/{{conference}}"
        participants = f"{conferences}/Participants"
        return [
            self.route("POST", f"{ACCOUNT}/Messages.json", self._create_message),
            self.route("GET", f"{ACCOUNT}/Messages.json", self._list_messages),
            self.route("GET", f"{ACCOUNT}/Messages/{{sid}}.json", self._fetch_message),
            self.route("POST", f"{ACCOUNT}/Calls.json", self._create_call),
            self.route("GET", f"{ACCOUNT}/Calls.json", self._list_calls),
            self.route("GET", f"{ACCOUNT}/Calls/{{sid}}.json", self._fetch_call),
            self.route("POST", f"{ACCOUNT}/Calls/{{sid}}.json", self._update_call),
            self.route("GET", f"{ACCOUNT}/Queues.json", self._list_queues),
            self.route("GET", f"{ACCOUNT}/Queues/{{queue}}.json", self._fetch_queue),
            self.route("GET", f"{members}.json", self._list_members),
            self.route("GET", f"{members}/{{sid}}.json", self._fetch_member),
            self.route("POST", f"{members}/{{sid}}.json", self._dequeue),
            self.route("GET", f"{ACCOUNT}/Recordings/{{sid}}.mp3", self._recording_media),
            self.route("DELETE", f"{ACCOUNT}/Recordings/{{sid}}.json", self._delete_recording),
            self.route("GET", f"{ACCOUNT}/Conferences.json", self._list_conferences),
            self.route("GET", f"{conferences}.json", self._fetch_conference),
            self.route("GET", f"{participants}.json", self._list_participants),
            self.route("POST", f"{participants}.json", self._add_participant),
            self.route("GET", f"{participants}/{{sid}}.json", self._fetch_participant),
            self.route("POST", f"{participants}/{{sid}}.json", self._update_participant),
            self.route("DELETE", f"{participants}/{{sid}}.json", self._remove_participant),
            *self._sandbox_routes(),
            self.not_found_route(),
        ]

    def _sandbox_routes(self) -> list[Route]:
        """Not Twilio's: how a simulated party in another process (`nightdesk call`) lives
        beside the calls here (`HttpSwitchboard`)."""
        calls = "/sandbox/Calls/{sid}"
        return [
            self.route("POST", f"{calls}/Queue", self._sandbox_queue),
            self.route("POST", f"{calls}/Leave", self._sandbox_leave),
            self.route("POST", f"{calls}/Conference", self._sandbox_conference),
            self.route("POST", f"{calls}/Hangup", self._sandbox_hang_up),
            Route(f"{calls}/Events", self._sandbox_events, methods=["GET"]),
        ]

    # -- resources (called with the lock held) ------------------------------------------

    def _create_message(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        to, from_, service = form.get("To"), form.get("From"), form.get("MessagingServiceSid")
        body = form.get("Body", "")
        if not to:
            raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
        if not (from_ or service):
            raise TwilioApiError(
                400,
                21603,
                "A 'From' or 'MessagingServiceSid' parameter is required to send a message.",
            )
        if not (body or form.get("MediaUrl") or form.get("ContentSid")):
            raise TwilioApiError(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise TwilioApiError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        self._check_to(to)
        if to in self._unsubscribed:
            raise TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
        callback = self._callback_url(form.get("StatusCallback"))
        msg = MessageRecord(
            new_sid("SM"), self.account_sid, to, from_, body, service, callback, self._clock()
        )
        # With a Messaging Service a message starts "accepted" and Twilio picks the sender.
        msg.status = "accepted" if service and not from_ else "queued"
        self._messages[msg.sid] = msg
        if self.on_message is not None:
            self.on_message(msg)
        outcome, error_code = self._sms.get(to, ("delivered", None))
        for status in message_steps(outcome, via_service=msg.status == "accepted"):
            self.callback_sender.submit(partial(self._advance_message, msg.sid, status, error_code))
        return 201, msg.to_json()

    def _list_messages(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Filters To, From and DateSent (by day: see `date_filter`), most recent first.
        Twilio sorts by DateSent; here a message not yet sent sorts by its creation."""
        sent = date_filter(form.multi_items(), "DateSent")
        found = [
            msg
            for msg in reversed(self._messages.values())  # newest first among equal dates
            if _same(form, "To", msg.to) and _same(form, "From", msg.from_) and sent(msg.date_sent)
        ]
        found.sort(key=lambda msg: msg.date_sent or msg.date_created, reverse=True)
        items = [msg.to_json() for msg in found]
        return 200, list_page("messages", self._list_path("Messages"), items, form.multi_items())

    def _fetch_message(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        msg = self._messages.get(path["sid"])
        if msg is None:
            raise http_error(404)
        return 200, msg.to_json()

    def _advance_message(self, sid: str, status: str, error_code: int | None) -> Callback | None:
        with self._lock:
            msg = self._messages.get(sid)
            if msg is None:  # reset() in between
                return None
            msg.status, msg.date_updated = status, self._clock()
            if status == "sent":
                msg.date_sent = msg.date_updated
            if status in ("undelivered", "failed"):
                msg.error_code = error_code
            if not msg.status_callback:
                return None
            return Callback(msg.status_callback, message_status_params(msg))

    def _create_call(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        to, from_ = form.get("To"), form.get("From")
        if not to:
            raise TwilioApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise TwilioApiError(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            raise TwilioApiError(400, 21205, "Url parameter is required.")
        self._check_to(to)
        call = CallRecord(new_sid("CA"), self.account_sid, to, from_, self._clock())
        call.url, call.twiml = form.get("Url"), form.get("Twiml")
        call.status_callback = self._callback_url(form.get("StatusCallback"))
        # Repeated StatusCallbackEvent parameters, one event each; "completed" is always sent.
        call.events = frozenset(form.getlist("StatusCallbackEvent")) | {"completed"}
        call.machine_detection = form.get("MachineDetection")
        if form.get("AsyncAmd") == "true":
            call.async_amd_status_callback = self._callback_url(form.get("AsyncAmdStatusCallback"))
        self._calls[call.sid] = call
        if self.on_call is not None:
            self.on_call(call)
        script = self._call_scripts.get(to)
        party = self.parties.script_for(call) if script is None else None
        if party is not None:  # a simulated person picks up, and stays until the call ends
            self._party_scripts[call.sid] = list(party)
            script = CallScript("in-progress", None, 0)
        script = script or CallScript("completed", None, 30)
        answered_by = (script.answered_by or "human") if call.machine_detection else None
        for event, status in call_steps(script.outcome):
            step = partial(
                self._advance_call, call.sid, event, status, answered_by, script.duration
            )
            self.callback_sender.submit(step)
            if event == "answered" and call.async_amd_status_callback:
                self.callback_sender.submit(partial(self._async_amd_result, call.sid))
        return 201, call.to_json()

    def _list_calls(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Filters To, From, Status, StartTime and EndTime (by day), newest first."""
        started = date_filter(form.multi_items(), "StartTime")
        ended = date_filter(form.multi_items(), "EndTime")
        found = [
            call
            for call in reversed(self._calls.values())
            if _same(form, "To", call.to)
            and _same(form, "From", call.from_)
            and _same(form, "Status", call.status)
            and started(call.start_time)
            and ended(call.end_time)
        ]
        found.sort(key=lambda call: call.date_created, reverse=True)
        items = [call.to_json() for call in found]
        return 200, list_page("calls", self._list_path("Calls"), items, form.multi_items())

    def _fetch_call(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        return 200, self._call(path["sid"]).to_json()

    def _update_call(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Redirect (Url/Twiml) or end (Status=completed|canceled) a call."""
        call = self._call(path["sid"])
        new_instructions = form.get("Url") or form.get("Twiml")
        if new_instructions:
            if call.status in CALL_ENDED:
                raise TwilioApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
            call.redirects.append(new_instructions)
            self._leave_queues(call.sid)
            self.lines.leave(call.sid)  # a redirected call leaves its conference
            method = form.get("Method", "POST").upper()
            self.lines.push(call.sid, Redirected(form.get("Url"), method, form.get("Twiml")))
        status = form.get("Status")
        if status in ("completed", "canceled") and call.status not in CALL_ENDED:
            # "canceled" only stops a call not yet answered; "completed" hangs up any call.
            if call.status != "in-progress":
                self._end_call(call, "canceled")
            elif status == "completed":
                self._end_call(call, "completed")
        return 200, call.to_json()

    def _advance_call(
        self, sid: str, event: str, status: str, answered_by: str | None, duration: int
    ) -> Callback | None:
        with self._lock:
            call = self._calls.get(sid)
            if call is None or call.status in CALL_ENDED:  # reset, or hung up meanwhile
                return None
            now = self._clock()
            call.status = status
            if status == "in-progress":
                call.start_time, call.answered_by = now, answered_by
                joining = self._joining.pop(sid, None)
                if joining is not None:  # a participant added through the REST API
                    self.lines.join(sid, joining[0], joining[1].end_on_exit, joining[1])
                party = self._party_scripts.pop(sid, None)
                if party is not None:
                    self.parties.answer(copy.copy(call), party)
            if status in CALL_ENDED:
                call.end_time, call.duration = now, duration if call.start_time else 0
            return self._call_callback(call, event)

    def _end_call(self, call: CallRecord, status: str) -> None:
        """Ends a call now (update or hang-up); its callback follows on the callback thread."""
        now = self._clock()
        call.status, call.end_time = status, now
        call.duration = int((now - call.start_time).total_seconds()) if call.start_time else 0
        self._leave_queues(call.sid)
        self.lines.leave(call.sid)
        self.lines.push(call.sid, Ended())
        self.callback_sender.submit(partial(self._locked_call_callback, call.sid))

    def _leave_queues(self, call_sid: str) -> None:
        for queue in self._queues.values():
            queue.members = [m for m in queue.members if m[0] != call_sid]

    def _locked_call_callback(self, sid: str) -> Callback | None:
        with self._lock:
            return (
                self._call_callback(self._calls[sid], "completed") if sid in self._calls else None
            )

    def _call_callback(self, call: CallRecord, event: str) -> Callback | None:
        if not call.status_callback or event not in call.events:
            return None
        sequence = self._sequence.get(call.sid, 0)
        self._sequence[call.sid] = sequence + 1
        return Callback(call.status_callback, call_status_params(call, sequence, self._clock()))

    def _async_amd_result(self, sid: str) -> Callback | None:
        """AsyncAmd answers the call at once and posts AnsweredBy separately:
        https://www.twilio.com/docs/voice/answering-machine-detection#asyncamd"""
        with self._lock:
            call = self._calls.get(sid)
            if call is None or not call.answered_by or not call.async_amd_status_callback:
                return None
            params = {
                "AccountSid": call.account_sid,
                "AnsweredBy": call.answered_by,
                "CallSid": call.sid,
                "MachineDetectionDuration": "2400",
            }
            return Callback(call.async_amd_status_callback, params)

    def _recording_media(self, path: dict[str, str], form: Form) -> tuple[int, bytes]:
        """A recording's audio, as its RecordingUrl with `.mp3` serves it:
        https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file"""
        audio = self._recordings.get(path["sid"])
        if audio is None:
            raise http_error(404)
        return 200, audio

    def _delete_recording(self, path: dict[str, str], form: Form) -> tuple[int, bytes]:
        """Deleting a recording: 204, then 404 for its media and for a second delete:
        https://www.twilio.com/docs/voice/api/recording#delete-a-recording-resource"""
        if self._recordings.pop(path["sid"], None) is None:
            raise http_error(404)
        return 204, b""

    def _list_queues(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        queues = [q.to_json(self._clock()) for q in self._queues.values()]
        return 200, list_page("queues", self._list_path("Queues"), queues, form.multi_items())

    def _fetch_queue(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        return 200, self._queue(path["queue"]).to_json(self._clock())

    def _list_members(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        queue, now = self._queue(path["queue"]), self._clock()
        members = [queue.member_json(sid, now) for sid, _ in queue.members]
        uri = queue.to_json(now)["subresource_uris"]["members"]
        return 200, list_page("queue_members", uri, members, form.multi_items())

    def _fetch_member(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        queue = self._queue(path["queue"])
        return 200, queue.member_json(self._member_sid(queue, path["sid"]), self._clock())

    def _dequeue(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Takes a caller (or the one at the Front) out of the queue and on to `Url`."""
        queue = self._queue(path["queue"])
        sid = self._member_sid(queue, path["sid"])
        url = form.get("Url")
        if not url:
            raise TwilioApiError(400, 21205, "Url parameter is required.")
        body = queue.member_json(sid, self._clock())
        queue.members = [m for m in queue.members if m[0] != sid]
        if sid in self._calls:
            self._calls[sid].redirects.append(url)
        self.lines.push(sid, Redirected(url, form.get("Method", "POST").upper()))
        return 200, body

    # -- conferences and their participants ----------------------------------------------
    # https://www.twilio.com/docs/voice/api/conference-resource and
    # https://www.twilio.com/docs/voice/api/conference-participant-resource

    def _list_conferences(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Open conferences (the fake forgets ended ones), filtered by FriendlyName."""
        now = self._clock()
        found = [
            conference_json(self.account_sid, room.sid, room.name, now)
            for room in self.lines.all_rooms()
            if _same(form, "FriendlyName", room.name) and _same(form, "Status", "in-progress")
        ]
        return 200, list_page("conferences", self._list_path("Conferences"), found,
                              form.multi_items())  # fmt: skip

    def _fetch_conference(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        room = self._room(path["conference"])
        return 200, conference_json(self.account_sid, room.sid, room.name, self._clock())

    def _list_participants(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        room, now = self._room(path["conference"]), self._clock()
        items = [
            participant_json(self.account_sid, room.sid, _view(sid, seat, "connected"), now)
            for sid, seat in room.participants.items()
        ]
        uri = f"{self._list_path('Conferences')[:-5]}/{room.sid}/Participants.json"
        return 200, list_page("participants", uri, items, form.multi_items())

    def _fetch_participant(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        room, sid = self._room(path["conference"]), path["sid"]
        seat = self._seat(room, sid)
        return 200, participant_json(
            self.account_sid, room.sid, _view(sid, seat, "connected"), self._clock()
        )

    def _update_participant(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Hold, Muted, Coaching (with CallSidToCoach), EndConferenceOnExit."""
        room, sid = self._room(path["conference"]), path["sid"]
        seat = self._seat(room, sid)
        coaching = form_bool(form.get("Coaching"), seat.coaching)
        coached = form.get("CallSidToCoach") or seat.call_sid_to_coach
        _check_coaching(room, coaching, coached)
        seat.hold = form_bool(form.get("Hold"), seat.hold)
        seat.muted = form_bool(form.get("Muted"), seat.muted)
        seat.end_on_exit = form_bool(form.get("EndConferenceOnExit"), seat.end_on_exit)
        seat.coaching, seat.call_sid_to_coach = coaching, coached if coaching else None
        return 200, participant_json(
            self.account_sid, room.sid, _view(sid, seat, "connected"), self._clock()
        )

    def _remove_participant(self, path: dict[str, str], form: Form) -> tuple[int, bytes]:
        """Kicks the participant: their <Dial> ends and their TwiML goes on after it (a call
        with nothing after it ends). Twilio answers 204."""
        room, sid = self._room(path["conference"]), path["sid"]
        self._seat(room, sid)
        self.lines.leave(sid)
        self.lines.push(sid, ConferenceEnded())
        return 204, b""

    def _add_participant(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        """Rings `To` from `From`; once answered, the call joins the conference as set."""
        room = self._room(path["conference"])
        to, from_ = form.get("To"), form.get("From")
        if not to:
            raise TwilioApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise TwilioApiError(400, 21213, "No 'From' number is specified")
        self._check_to(to)
        coaching = form_bool(form.get("Coaching"), False)
        coached = form.get("CallSidToCoach")
        _check_coaching(room, coaching, coached)
        seat = Seat(
            end_on_exit=form_bool(form.get("EndConferenceOnExit"), False),
            muted=form_bool(form.get("Muted"), False), coaching=coaching,
            call_sid_to_coach=coached if coaching else None,
        )  # fmt: skip
        call = CallRecord(new_sid("CA"), self.account_sid, to, from_, self._clock())
        call.status_callback = self._callback_url(form.get("StatusCallback"))
        call.events = frozenset(form.getlist("StatusCallbackEvent")) | {"completed"}
        self._calls[call.sid] = call
        self._joining[call.sid] = (room.name, seat)
        if self.on_call is not None:
            self.on_call(call)
        script = self._call_scripts.get(to, CallScript("in-progress", None, 0))
        for event, status in call_steps(script.outcome):
            self.callback_sender.submit(
                partial(self._advance_call, call.sid, event, status, None, script.duration)
            )
        view = _view(call.sid, seat, "queued")
        return 201, participant_json(self.account_sid, room.sid, view, self._clock())

    def _room(self, sid: str) -> Room:
        room = self.lines.room(sid)
        if room is None:
            raise http_error(404)
        return room

    @staticmethod
    def _seat(room: Room, call_sid: str) -> Seat:
        seat = room.participants.get(call_sid)
        if seat is None:
            raise http_error(404)
        return seat

    # -- the switchboard (calls between their webhooks) ----------------------------------

    def wait_in_queue(self, call_sid: str, queue_name: str, from_: str, to: str) -> str:
        """An inbound call joins a queue, as `<Enqueue>` does; returns the queue's sid."""
        with self._lock:
            if call_sid not in self._calls:
                now = self._clock()
                call = CallRecord(call_sid, self.account_sid, to, from_, now, "inbound")
                call.status, call.start_time = "in-progress", now
                self._calls[call_sid] = call
            queue = next((q for q in self._queues.values() if q.friendly_name == queue_name), None)
            if queue is None:
                queue = QueueRecord(new_sid("QU"), self.account_sid, queue_name, self._clock())
                self._queues[queue.sid] = queue
            queue.members.append((call_sid, self._clock()))
            return queue.sid

    def leave_queue(self, call_sid: str) -> None:
        with self._lock:
            self._leave_queues(call_sid)

    def join_conference(self, call_sid: str, name: str, end_on_exit: bool) -> str:
        return self.lines.join(call_sid, name, end_on_exit)

    def next_event(self, call_sid: str, timeout: float) -> LineEvent | None:
        return self.lines.next_event(call_sid, timeout)

    def hang_up(self, call_sid: str) -> None:
        """The call's party hangs up: the call ends and leaves any queue or conference."""
        with self._lock:
            call = self._calls.get(call_sid)
            if call is None:  # not one of the fake's calls, or not registered yet: its party
                self.lines.leave(call_sid)  # leaves any conference, and hears the end
                self.lines.push(call_sid, Ended())
            elif call.status not in CALL_ENDED:
                self._end_call(call, "completed")

    def _sandbox_queue(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        queue_name, from_, to = form.get("QueueName", ""), form.get("From", ""), form.get("To", "")
        return 200, {"queue_sid": self.wait_in_queue(path["sid"], queue_name, from_, to)}

    def _sandbox_leave(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        self.leave_queue(path["sid"])
        return 200, {}

    def _sandbox_conference(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        end_on_exit = form.get("EndConferenceOnExit") == "true"
        sid = self.join_conference(path["sid"], form.get("Name", ""), end_on_exit)
        return 200, {"conference_sid": sid}

    def _sandbox_hang_up(self, path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
        self.hang_up(path["sid"])
        return 200, {}

    async def _sandbox_events(self, request: Request) -> Response:
        """A long poll: the call's next event, waiting (off the event loop) for one."""
        try:
            self._authenticate(request)
        except TwilioApiError as error:
            return JSONResponse(error.body(), error.status, headers=error.headers)
        timeout = min(float(request.query_params.get("Timeout", "30")), 600.0)
        sid = request.path_params["sid"]
        event = await asyncio.to_thread(self.lines.next_event, sid, timeout)
        return JSONResponse(event_to_json(event))

    # -- helpers ----------------------------------------------------------------------

    def _list_path(self, resource: str) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/{resource}.json"

    def _check_to(self, to: str) -> None:
        """An E.164 number, or a Voice SDK client (`client:identity`), as Twilio takes."""
        if to.startswith("client:") and len(to) > len("client:"):
            return
        if to in self._invalid or not is_e164(to):
            raise TwilioApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")

    @staticmethod
    def _callback_url(url: str | None) -> str | None:
        """Stricter than Twilio, which resolves a relative URL against the call's: the app
        always sends absolute URLs, so a relative one is a bug worth a 400 here."""
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise TwilioApiError(400, 21609, f"The StatusCallback URL {url} is not a valid URL.")
        return url or None

    def _call(self, sid: str) -> CallRecord:
        if sid not in self._calls:
            raise http_error(404)
        return self._calls[sid]

    def _queue(self, sid: str) -> QueueRecord:
        if sid not in self._queues:
            raise http_error(404)
        return self._queues[sid]

    @staticmethod
    def _member_sid(queue: QueueRecord, sid: str) -> str:
        """`Front` names whoever has waited longest."""
        sids = [member for member, _ in queue.members]
        if sid == "Front" and sids:
            return sids[0]
        if sid not in sids:
            raise http_error(404)
        return sid


def _view(call_sid: str, seat: Seat, status: str) -> ParticipantView:
    return ParticipantView(
        call_sid, seat.end_on_exit, seat.muted, seat.hold, seat.coaching, seat.call_sid_to_coach,
        status,
    )  # fmt: skip


def _check_coaching(room: Room, coaching: bool, coached: str | None) -> None:
    """Coaching needs the participant to coach, in this conference."""
    if coaching and (coached is None or coached not in room.participants):
        raise TwilioApiError(400, 20001, "CallSidToCoach must name a participant when Coaching")


def _same(form: Form, name: str, value: str | None) -> bool:
    """An equality filter: absent matches everything."""
    wanted = form.get(name)
    return wanted is None or wanted == value
