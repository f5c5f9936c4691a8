"""The call path: each voice webhook becomes one engine turn, stored before its TwiML is returned.

Every function here runs inside one transaction that its caller commits, holds the call's row
lock (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE), and is safe to repeat:
Twilio may send the same request twice, and the second gets the first one's answer.

The turns of a call (answer, step, status) read and write the call row with Core statements
(`app.calls.queries`) rather than ORM objects: they are most of the service's traffic, and the
ORM's unit of work cost three times the statements themselves. The rarer callbacks (recordings,
transcriptions, calls we never saw begin) use the ORM.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calls import queries
from app.calls.models import Call, CallEvent
from app.calls.webhooks import VoiceWebhook, heard_from
from app.clients.flows import FlowStore
from app.clients.models import Client, PhoneNumber
from app.dispatch import outbox
from app.flows import engine
from app.flows.engine import CallState, HungUp, SaveMessage, Turn
from app.flows.schema import Flow, QueueStep, Speech, Urgency
from app.messages import service as messages
from app.messages.service import CallFacts
from app.observability import CALLS_STARTED, client_label, mask_number
from app.telephony.twiml import TurnUrls, render_hold, render_twiml, render_voicemail

log = logging.getLogger("nightdesk.calls")

FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
UNKNOWN_NUMBER_PROMPT = (
    "Thank you for calling. This number isn't set up to take calls at the moment, but we "
    "don't want to miss you. Please leave your name, number and a message after the tone."
)
TROUBLE_PROMPT = (
    "Thank you for calling. We're having a little trouble on our side, but your call matters. "
    "Please leave your name, number and a message after the tone and it will be passed on."
)


@dataclass(frozen=True)
class Urls:
    """Builds the absolute URLs Twilio calls back, from the public base URL."""

    base: str

    def turn(self, number: int) -> TurnUrls:
        return _turn_urls(self.base, number)

    def voicemail(self, prompt: str, caller: str, called: str) -> str:
        """A voicemail that needs no flow and no database; its callbacks carry who called whom."""
        who = urlencode({"caller": caller, "called": called})
        return render_voicemail(
            prompt,
            done_url=f"{self.base}/twilio/fallback/done",
            recording_url=f"{self.base}/twilio/voice/recording?{who}",
            transcription_url=f"{self.base}/twilio/voice/transcription?{who}",
        )


@lru_cache(maxsize=256)  # a handful of bases, and turns numbered 1, 2, 3...
def _turn_urls(base: str, number: int) -> TurnUrls:
    step = f"{base}/twilio/voice/step?turn={number}"
    return TurnUrls(
        step=step,
        silence=f"{step}&silence=1",
        hold=f"{base}/twilio/voice/hold",
        recording=f"{base}/twilio/voice/recording",
        transcription=f"{base}/twilio/voice/transcription",
    )


class TurnListener(Protocol):
    """Told of every stored turn, inside its unit of work (the console's queue of waiting
    callers is kept this way)."""

    def turn_stored(
        self, session: Session, call: CallFacts, flow: Flow | None, turn: Turn, now: dt.datetime
    ) -> None: ...


class CallService:
    """Answers voice webhooks with TwiML, keeping each call's state and timeline in the database."""

    def __init__(self, flows: FlowStore, listeners: Sequence[TurnListener] = ()) -> None:
        self.flows = flows
        self.listeners = tuple(listeners)

    def answer(self, session: Session, hook: VoiceWebhook, urls: Urls, now: dt.datetime) -> str:
        """A new call: find the client by the number dialled and run its flow's first turn."""
        call = queries.insert_call_for_number(session, hook.call_sid, hook.caller, hook.called, now)
        if call is None:  # a repeat of the first request, or a number no client owns
            known = queries.lock_call(session, hook.call_sid)
            if known is not None:
                return str(known.last_twiml) or urls.voicemail(
                    TROUBLE_PROMPT, hook.caller, hook.called
                )
            return self._unknown_number(session, hook, urls, now)
        flow = self.flows.get(session, call.flow_version_id)
        CALLS_STARTED.labels(client=client_label(flow.client)).inc()
        log.info(
            "call_started",
            extra={"call_sid": hook.call_sid, "client": flow.client, "caller": hook.caller},
        )
        turn = engine.start_call(flow, hook.caller, now)
        return self._apply(session, _Call(call.id, hook.call_sid, call.client_id, hook.caller,
                                          call.turn), flow, turn, urls, now)  # fmt: skip

    def step(
        self,
        session: Session,
        hook: VoiceWebhook,
        turn_number: int,
        silence: bool,
        urls: Urls,
        now: dt.datetime,
    ) -> str:
        """The caller answered (or didn't): advance the flow from where this call stands."""
        call = queries.lock_call(session, hook.call_sid)
        if call is None or call.flow_version_id is None:
            log.warning("step_for_unknown_call", extra={"call_sid": hook.call_sid})
            return urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called)
        if turn_number != call.turn:
            log.info(
                "repeated_request",
                extra={"call_sid": call.sid, "turn": turn_number, "current": call.turn},
            )
            return str(call.last_twiml) or urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called)
        flow = self.flows.get(session, call.flow_version_id)
        heard = heard_from(hook, silence)
        turn = engine.advance(flow, CallState.from_json(call.state), heard, now)
        return self._apply(session, _Call.of(call), flow, turn, urls, now)

    def hold(self, session: Session, hook: VoiceWebhook, queue_seconds: int) -> str:
        """The Enqueue wait music: hold message until the step's timeout, then <Leave>."""
        call = session.scalars(select(Call).where(Call.sid == hook.call_sid)).first()
        if call is None or call.flow_version_id is None:
            return render_hold("", None, leave=True, speech=Speech())
        flow = self.flows.get(session, call.flow_version_id)
        step = flow.steps.get(CallState.from_json(call.state).step)
        if not isinstance(step, QueueStep):
            return render_hold("", None, leave=True, speech=flow.speech)
        leave = queue_seconds >= step.timeout
        return render_hold(step.hold_message, step.hold_music, leave, flow.speech)

    def status(self, session: Session, hook: VoiceWebhook, now: dt.datetime) -> None:
        """Twilio's call status callback: when the call is over, nothing gathered is lost."""
        if hook.call_status not in FINAL_STATUSES:
            return
        call = queries.lock_call(session, hook.call_sid)
        if call is None:
            _call_we_never_saw(session, hook, now)
            call = queries.lock_call(session, hook.call_sid)
            assert call is not None
        if call.ended_at is not None:
            return  # a repeat
        flow = self.flows.get(session, call.flow_version_id) if call.flow_version_id else None
        state = CallState.from_json(call.state) if call.state else CallState(step="")
        turn = engine.advance(flow, state, HungUp(), now) if flow else _hung_up_without_flow(state)
        queries.end_call(
            session, call.id, hook.call_status, turn.state.to_json(), hook.duration, now
        )
        self._save_messages(session, _Call.of(call), flow, turn, now)
        self._tell_listeners(session, _Call.of(call), flow, turn, now)
        log.info("call_ended", extra={"call_sid": call.sid, "status": hook.call_status})

    def recording(
        self, session: Session, hook: VoiceWebhook, now: dt.datetime, *, fallback: bool
    ) -> None:
        """A finished recording: attach it whatever order the callbacks arrive in."""
        if hook.recording_sid is None or hook.recording_url is None:
            return
        call = _locked_call_object(session, hook, now)
        if queries.attachments(session, call.id).get("recording_sid") == hook.recording_sid:
            return  # a repeat (Twilio's, or the spool's replay after a crash): already here
        if messages.recording_held(session, hook.recording_sid):
            # Another call's message has it: Twilio never does this, a forger might. Ignored
            # like a repeat, so the unique constraint never turns it into a 500.
            log.warning("recording_of_another_call", extra={"call_sid": hook.call_sid})
            return
        detail = {
            "sid": hook.recording_sid,
            "url": hook.recording_url,
            "seconds": hook.recording_seconds,
        }
        session.add(CallEvent(call_id=call.id, kind="recording", detail=detail, at=now))
        message = messages.message_for_call(session, call.id)
        if message is not None:
            messages.attach_recording(session, message, detail, now)
        elif fallback or call.ended_at is not None:
            # A voicemail from the fallback or a call that has already ended: it is the message.
            self._voicemail_message(session, call, now)

    def transcription(self, session: Session, hook: VoiceWebhook, now: dt.datetime) -> None:
        if hook.transcription_text is None:
            return
        call = _locked_call_object(session, hook, now)
        text = hook.transcription_text
        if queries.attachments(session, call.id).get("transcription") == text:
            return  # a repeat
        session.add(CallEvent(call_id=call.id, kind="transcription", detail={"text": text}, at=now))
        message = messages.message_for_call(session, call.id)
        if message is not None:
            messages.attach_transcription(session, message, text, now)

    # --- shared pieces ------------------------------------------------------------------------

    def _apply(
        self, session: Session, call: _Call, flow: Flow, turn: Turn, urls: Urls, now: dt.datetime
    ) -> str:
        """Store the turn (state, timeline, message) and hand out the TwiML for the next one."""
        number = call.turn + 1
        twiml = render_twiml(turn.actions, urls.turn(number), flow.speech)
        events = [{"kind": note.kind, "detail": note.detail, "at": now} for note in turn.notes]
        queries.save_turn(session, call.id, number, turn.state.to_json(), twiml, events)
        self._save_messages(session, call, flow, turn, now)
        self._tell_listeners(session, call, flow, turn, now)
        return twiml

    def _tell_listeners(
        self, session: Session, call: _Call, flow: Flow | None, turn: Turn, now: dt.datetime
    ) -> None:
        for listener in self.listeners:
            listener.turn_stored(session, call, flow, turn, now)

    def _save_messages(
        self, session: Session, call: _Call, flow: Flow | None, turn: Turn, now: dt.datetime
    ) -> None:
        for save in turn.actions:
            if isinstance(save, SaveMessage):
                self._save_message(session, call, flow, save, now)

    def _save_message(
        self,
        session: Session,
        call: CallFacts,
        flow: Flow | None,
        save: SaveMessage,
        now: dt.datetime,
    ) -> None:
        """The call's message, with what reached the call before it, and its notifications."""
        outbox.take_message(session, call, flow, save, queries.attachments(session, call.id), now)

    def _unknown_number(
        self, session: Session, hook: VoiceWebhook, urls: Urls, now: dt.datetime
    ) -> str:
        log.warning(
            "call_to_unknown_number",
            extra={"call_sid": hook.call_sid, "called": mask_number(hook.called)},
        )
        twiml = urls.voicemail(UNKNOWN_NUMBER_PROMPT, hook.caller, hook.called)
        call = Call(
            sid=hook.call_sid,
            caller=hook.caller,
            called=hook.called,
            state={},
            turn=1,
            last_twiml=twiml,
            started_at=now,
        )
        session.add(call)
        session.flush()
        session.add(CallEvent(call_id=call.id, kind="unknown_number", at=now, detail={}))
        return twiml

    def _voicemail_message(self, session: Session, call: Call, now: dt.datetime) -> None:
        flow = self.flows.get(session, call.flow_version_id) if call.flow_version_id else None
        state = CallState.from_json(call.state) if call.state else CallState(step="")
        save = SaveMessage(urgency=state.urgency, answers=dict(state.answers), outcome="voicemail")
        self._save_message(session, call, flow, save, now)


@dataclass(frozen=True)
class _Call:
    """What a turn needs to know of its call, whichever statement read it."""

    id: int
    sid: str
    client_id: int | None
    caller: str
    turn: int

    @classmethod
    def of(cls, row: Any) -> _Call:
        return cls(row.id, row.sid, row.client_id, row.caller, row.turn)


def _locked_call_object(session: Session, hook: VoiceWebhook, now: dt.datetime) -> Call:
    """The call as an ORM object, for callbacks that hand it to the messages service."""
    call = session.scalars(select(Call).where(Call.sid == hook.call_sid).with_for_update()).first()
    return call or _call_we_never_saw(session, hook, now)


def _call_we_never_saw(session: Session, hook: VoiceWebhook, now: dt.datetime) -> Call:
    """A callback for a call that began while we could not store it (the fallback took it)."""
    client = session.scalars(
        select(Client).join(PhoneNumber).where(PhoneNumber.number == hook.called)
    ).first()
    call = Call(
        sid=hook.call_sid,
        client_id=client.id if client else None,
        flow_version_id=client.active_flow_id if client else None,
        caller=hook.caller,
        called=hook.called,
        state={},
        started_at=now,
    )
    session.add(call)
    session.flush()
    session.add(CallEvent(call_id=call.id, kind="taken_by_fallback", at=now, detail={}))
    return call


def _hung_up_without_flow(state: CallState) -> Turn:
    """No flow to ask (unknown number, fallback): a call with nothing recorded is a missed call."""
    turn = Turn(replace(state, ended=True))
    if not state.message_taken:
        turn.actions.append(
            SaveMessage(urgency=Urgency.routine, answers=dict(state.answers), outcome="partial")
        )
        turn.state = replace(turn.state, message_taken=True)
    return turn
