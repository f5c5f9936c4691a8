"""The call path: each voice webhook becomes one engine turn, stored before its TwiML is returned.

Every function here runs inside one transaction that its caller commits, holds the call's row
lock (PostgreSQL: SELECT ... FOR UPDATE; SQLite: BEGIN IMMEDIATE), and is safe to repeat:
Twilio may send the same request twice, and the second gets the first one's answer.

The turns of a call (answer, step, status) read and write the call row with prepared statements
(`app.prepared`) rather than ORM objects: they are most of the service's traffic, and the ORM's
unit of work cost three times the statements themselves. Saving a message does the same
(`app.messages.service`); the rarer callbacks (recordings, transcriptions, calls we never saw
begin) use the ORM.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.calls.models import Call, CallEvent
from app.calls.webhooks import VoiceWebhook, heard_from
from app.clients.flows import FlowStore
from app.clients.models import Client, PhoneNumber
from app.flows import engine
from app.flows.engine import CallState, HungUp, SaveMessage, Turn
from app.flows.schema import Flow, QueueStep, Speech, Urgency
from app.messages import service as messages
from app.observability import CALLS_STARTED, mask_number
from app.prepared import Prepared
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


class CallService:
    """Answers voice webhooks with TwiML, keeping each call's state and timeline in the database."""

    def __init__(self, flows: FlowStore) -> None:
        self.flows = flows

    def answer(self, session: Session, hook: VoiceWebhook, urls: Urls, now: dt.datetime) -> str:
        """A new call: find the client by the number dialled and run its flow's first turn."""
        call = _locked_call(session, hook.call_sid)
        if call is not None:  # Twilio repeated the first request
            return call.last_twiml or urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called)
        client = _CLIENT_FOR_NUMBER.first(session, {"number": hook.called})
        if client is None or client[2] is None:
            return self._unknown_number(session, hook, urls, now)
        client_id, slug, flow_version_id = client
        flow = self.flows.get(session, flow_version_id)
        call = _new_call(session, hook, client_id, flow_version_id, now)
        CALLS_STARTED.labels(client=slug).inc()
        log.info(
            "call_started", extra={"call_sid": hook.call_sid, "client": slug, "caller": hook.caller}
        )
        turn = engine.start_call(flow, hook.caller, now)
        return self._apply(session, call, flow, turn, urls, now)

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
        call = _locked_call(session, hook.call_sid)
        if call is None or call.flow_version_id is None:
            log.warning("step_for_unknown_call", extra={"call_sid": hook.call_sid})
            return urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called)
        if turn_number != call.turn:
            log.info(
                "repeated_request",
                extra={"call_sid": call.sid, "turn": turn_number, "current": call.turn},
            )
            return call.last_twiml or urls.voicemail(TROUBLE_PROMPT, hook.caller, hook.called)
        flow = self.flows.get(session, call.flow_version_id)
        heard = heard_from(hook, silence)
        turn = engine.advance(flow, CallState.from_json(call.state), heard, now)
        return self._apply(session, call, flow, turn, urls, now)

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
        call = _locked_call(session, hook.call_sid) or _call_we_never_saw(session, hook, now)
        if call.ended_at is not None:
            return  # a repeat
        flow = self.flows.get(session, call.flow_version_id) if call.flow_version_id else None
        state = CallState.from_json(call.state) if call.state else CallState(step="")
        turn = engine.advance(flow, state, HungUp(), now) if flow else _hung_up_without_flow(state)
        _END_CALL.execute(session, {
            "call_id": call.id, "new_status": hook.call_status, "ended": now,
            "new_state": turn.state.to_json()})  # fmt: skip
        _ADD_EVENTS.many(session, [{"call_id": call.id, "kind": "call_ended", "at": now,
            "detail": {"status": hook.call_status, "seconds": hook.duration}}])  # fmt: skip
        self._save_messages(session, call, flow, turn, now)
        log.info("call_ended", extra={"call_sid": call.sid, "status": hook.call_status})

    def recording(
        self, session: Session, hook: VoiceWebhook, now: dt.datetime, *, fallback: bool
    ) -> None:
        """A finished recording: attach it whatever order the callbacks arrive in."""
        if hook.recording_sid is None or hook.recording_url is None:
            return
        call = _locked_call_object(session, hook, now)
        message = messages.message_for_call(session, call)
        detail = {
            "sid": hook.recording_sid,
            "url": hook.recording_url,
            "seconds": hook.recording_seconds,
        }
        messages.attach_recording(session, call, message, detail, now)
        if message is None and (fallback or call.ended_at is not None):
            # A voicemail from the fallback or a call that has already ended: it is the message.
            self._voicemail_message(session, call, now)

    def transcription(self, session: Session, hook: VoiceWebhook, now: dt.datetime) -> None:
        if hook.transcription_text is None:
            return
        call = _locked_call_object(session, hook, now)
        message = messages.message_for_call(session, call)
        messages.attach_transcription(session, call, message, hook.transcription_text, now)

    # --- shared pieces ------------------------------------------------------------------------

    def _apply(
        self, session: Session, call: CallRow, flow: Flow, turn: Turn, urls: Urls, now: dt.datetime
    ) -> str:
        """Store the turn (state, timeline, message) and hand out the TwiML for the next one."""
        number = call.turn + 1
        twiml = render_twiml(turn.actions, urls.turn(number), flow.speech)
        _SAVE_TURN.execute(session, {
            "call_id": call.id, "new_turn": number, "new_state": turn.state.to_json(),
            "twiml": twiml})  # fmt: skip
        if turn.notes:
            _ADD_EVENTS.many(session, [
                {"call_id": call.id, "kind": note.kind, "detail": note.detail, "at": now}
                for note in turn.notes])  # fmt: skip
        self._save_messages(session, call, flow, turn, now)
        return twiml

    def _save_messages(
        self, session: Session, call: CallRow, flow: Flow | None, turn: Turn, now: dt.datetime
    ) -> None:
        saves = [action for action in turn.actions if isinstance(action, SaveMessage)]
        if not saves:
            return
        for save in saves:
            messages.save_message(session, call, flow, save, now)

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
        messages.save_message(session, call, flow, save, now)


# --- the call row, without the ORM -----------------------------------------------------------

CALLS = Call.metadata.tables[Call.__tablename__]
_LOCK_CALL = Prepared(
    select(
        CALLS.c.id, CALLS.c.client_id, CALLS.c.caller, CALLS.c.flow_version_id, CALLS.c.turn,
        CALLS.c.state, CALLS.c.last_twiml, CALLS.c.ended_at,
    )
    .where(CALLS.c.sid == bindparam("sid"))
    .with_for_update()
)  # fmt: skip
_CLIENT_FOR_NUMBER = Prepared(
    select(Client.id, Client.slug, Client.active_flow_id)
    .join(PhoneNumber)
    .where(PhoneNumber.number == bindparam("number"))
)
_INSERT_CALL = Prepared(insert(CALLS).returning(CALLS.c.id))
_SAVE_TURN = Prepared(
    update(CALLS)
    .where(CALLS.c.id == bindparam("call_id"))
    .values(turn=bindparam("new_turn"), state=bindparam("new_state"), last_twiml=bindparam("twiml"))
)
_END_CALL = Prepared(
    update(CALLS)
    .where(CALLS.c.id == bindparam("call_id"))
    .values(
        status=bindparam("new_status"), ended_at=bindparam("ended"), state=bindparam("new_state")
    )
)
_ADD_EVENTS = Prepared(insert(CallEvent.metadata.tables[CallEvent.__tablename__]))


@dataclass(frozen=True)
class CallRow:
    """What a turn needs of the call row, read under its lock."""

    id: int
    sid: str
    client_id: int | None
    caller: str
    flow_version_id: int | None
    turn: int
    state: dict[str, Any]
    last_twiml: str
    ended_at: dt.datetime | None


def _locked_call(session: Session, call_sid: str) -> CallRow | None:
    row = _LOCK_CALL.first(session, {"sid": call_sid})
    if row is None:
        return None
    return CallRow(row[0], call_sid, *row[1:])


def _new_call(
    session: Session, hook: VoiceWebhook, client_id: int, flow_version_id: int, now: dt.datetime
) -> CallRow:
    call_id: int = _INSERT_CALL.scalar(session, {
        "sid": hook.call_sid, "client_id": client_id, "flow_version_id": flow_version_id,
        "caller": hook.caller, "called": hook.called, "state": {}, "started_at": now})  # fmt: skip
    return CallRow(call_id, hook.call_sid, client_id, hook.caller, flow_version_id, 0, {}, "", None)


def _locked_call_object(session: Session, hook: VoiceWebhook, now: dt.datetime) -> Call:
    """The call as an ORM object, for callbacks that hand it to the messages service."""
    call = session.scalars(select(Call).where(Call.sid == hook.call_sid).with_for_update()).first()
    return call or _call_object_we_never_saw(session, hook, now)


def _call_we_never_saw(session: Session, hook: VoiceWebhook, now: dt.datetime) -> CallRow:
    _call_object_we_never_saw(session, hook, now)
    row = _locked_call(session, hook.call_sid)
    assert row is not None
    return row


def _call_object_we_never_saw(session: Session, hook: VoiceWebhook, now: dt.datetime) -> Call:
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
