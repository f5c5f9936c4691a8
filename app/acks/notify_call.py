"""The notification call: a contact's phone rings, hears the message, and takes it with a key.

Only a keypress acknowledges. An answering machine hears that there is a message (never its
details) and the call ends; escalation carries on as if it had not been answered.

In privacy mode the contact first keys their PIN (`app.acks.pin` decides): nothing about
the message but its client and urgency is said before it is right, and three wrong tries end
the call. A right PIN is recorded against the call's sid, so the keys after it work as usual.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.acks.inbound import Standing, Verdict, standing_of, take
from app.acks.pin import PinVerdict, judge_pin
from app.acks.service import record_called_back
from app.acks.webhooks import NotifyCallTurn
from app.clients.flows import FlowStore
from app.clients.models import Contact
from app.dispatch import texts
from app.dispatch.models import Delivery, ProviderEvent
from app.dispatch.status import DeliveryNotFoundError, first_time, note_voicemail_pickup
from app.dispatch.webhooks import is_machine
from app.flows.schema import Flow
from app.messages.models import Message
from app.messages.reads import Reader, log_reads
from app.messages.timeline import add_event
from app.telephony.twiml import (
    render_connect,
    render_goodbye,
    render_key_prompt,
    render_pin_prompt,
)

PLAYS = 2  # silence hears the message once more, then the call ends
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SOMEONE_CALLED = "the person called"


@dataclass(frozen=True)
class NotifyCallUrls:
    """Where the notification call's Gather sends its key, and its Redirect after silence."""

    base: str

    def key(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice/key?d={delivery_id}"

    def silence(self, delivery_id: int, tries: int) -> str:
        return f"{self.key(delivery_id)}&silence=1&tries={tries}"

    def pin(self, delivery_id: int, tries: int) -> str:
        """Where the PIN keyed on try number `tries` goes (the key URL: before the PIN is
        right, keys are read as the PIN)."""
        return f"{self.key(delivery_id)}&tries={tries}"


@dataclass(frozen=True)
class _Notified:
    """The call's delivery, with the message, the contact called and the client's current flow."""

    delivery: Delivery
    message: Message
    contact: Contact | None
    flow: Flow

    @property
    def who(self) -> str:
        return self.contact.name if self.contact else SOMEONE_CALLED

    @property
    def summary(self) -> texts.MessageSummary:
        return texts.MessageSummary.of(
            self.message, self.flow.name, private=self.flow.private, overdue=self.delivery.lap > 0
        )

    @property
    def pin(self) -> str | None:
        """The PIN hash this contact keys first (privacy mode); None: no PIN asked."""
        return self.flow.pin_for(self.contact.key if self.contact else None)


def answered(
    session: Session,
    flows: FlowStore,
    delivery_id: int,
    turn: NotifyCallTurn,
    urls: NotifyCallUrls,
    now: dt.datetime,
) -> str:
    """The call was answered: a person hears the message and the options, a machine a notice."""
    call = _notified(session, flows, delivery_id)
    if is_machine(turn.answered_by):
        note_voicemail_pickup(session, call.delivery, turn.call_sid, turn.answered_by, now)
        return render_goodbye(texts.voicemail_notice(call.summary), call.flow.speech)
    if call.pin is not None and not _pin_accepted(session, turn.call_sid):
        return _ask_pin(call, urls, tries=1)
    return _offer(call, urls, tries=1)


def key_pressed(
    session: Session,
    flows: FlowStore,
    delivery_id: int,
    turn: NotifyCallTurn,
    urls: NotifyCallUrls,
    *,
    silence: bool,
    tries: int,
    now: dt.datetime,
) -> str:
    """1 takes the message, 2 repeats it, 3 takes it and rings the caller; silence repeats once.
    In privacy mode, until the PIN is right, what is keyed is the PIN."""
    call = _notified(session, flows, delivery_id)
    if call.pin is not None and not _pin_accepted(session, turn.call_sid):
        keyed = None if silence else turn.digits
        return _pin_keyed(session, call, turn, urls, call.pin, keyed, tries, now)
    if silence:
        if tries >= PLAYS:
            return render_goodbye(texts.CALL_TRY_LATER, call.flow.speech)
        return _offer(call, urls, tries=tries + 1)
    match turn.digits:
        case "1":
            return render_goodbye(_spoken(_take(session, flows, call, now)), call.flow.speech)
        case "2":
            return _offer(call, urls, tries=1)
        case "3":
            return _connect(session, flows, call, turn, now)
        case _:
            return _offer(call, urls, tries=1, opening=texts.CALL_NOT_AN_OPTION)


def callback_number(caller: str, answers: Mapping[str, Any]) -> str | None:
    """Whom '3' dials: the number the caller left if it is dialable, else the one they called
    from, unless withheld. Pure."""
    left = str(answers.get("callback") or "")
    if E164.match(left):
        return left
    return caller if texts.may_text_caller(caller) else None


def _notified(session: Session, flows: FlowStore, delivery_id: int) -> _Notified:
    delivery = session.get(Delivery, delivery_id)
    message = session.get(Message, delivery.message_id) if delivery else None
    flow = flows.for_client(session, message.client_id) if message else None
    if delivery is None or message is None or flow is None:
        raise DeliveryNotFoundError(f"no notification call for delivery {delivery_id}")
    contact = session.get(Contact, delivery.contact_id) if delivery.contact_id else None
    return _Notified(delivery, message, contact, flow)


def _pin_accepted(session: Session, call_sid: str) -> bool:
    return session.get(ProviderEvent, _pin_key(call_sid)) is not None


def _pin_key(call_sid: str) -> str:
    return f"{call_sid}:pin_accepted"


def _ask_pin(call: _Notified, urls: NotifyCallUrls, *, tries: int, again: bool = False) -> str:
    """Who the message is for and its urgency, and the PIN to key: nothing of the message."""
    standing = standing_of(call.message, call.flow.name, call.who)
    if standing.verdict is not Verdict.open:  # settled: nothing to unlock
        return render_goodbye(_spoken(standing), call.flow.speech)
    prompt = texts.pin_prompt(call.summary, call.flow.speech.language, again=again)
    delivery_id = call.delivery.id
    return render_pin_prompt(
        prompt, urls.pin(delivery_id, tries), urls.silence(delivery_id, tries), call.flow.speech
    )


def _pin_keyed(
    session: Session,
    call: _Notified,
    turn: NotifyCallTurn,
    urls: NotifyCallUrls,
    pin: str,
    keyed: str | None,
    tries: int,
    now: dt.datetime,
) -> str:
    """Try number `tries` at the PIN: the message and its options, another try, or goodbye."""
    verdict = judge_pin(keyed, pin, tries)
    if verdict is PinVerdict.again:
        return _ask_pin(call, urls, tries=tries + 1, again=True)
    if verdict is PinVerdict.refused:
        if first_time(session, f"{turn.call_sid}:pin_refused"):
            detail = {"by": call.who, "delivery": call.delivery.id, "tries": tries}
            add_event(session, call.message.id, "pin_refused", now, **detail)
        return render_goodbye(texts.CALL_PIN_REFUSED, call.flow.speech)
    if first_time(session, _pin_key(turn.call_sid)):
        detail = {"by": call.who, "delivery": call.delivery.id}
        add_event(session, call.message.id, "pin_accepted", now, **detail)
        log_reads(session, [call.message.id], Reader(call.who), "call", now)
    return _offer(call, urls, tries=1)


def _offer(call: _Notified, urls: NotifyCallUrls, *, tries: int, opening: str = "") -> str:
    """The message and the options, unless it is settled already (then who has it)."""
    standing = standing_of(call.message, call.flow.name, call.who)
    if standing.verdict is not Verdict.open:
        return render_goodbye(_spoken(standing), call.flow.speech)
    prompt = " ".join(
        p for p in (opening, texts.call_script(call.summary), texts.CALL_OPTIONS) if p
    )
    delivery_id = call.delivery.id
    return render_key_prompt(
        prompt, urls.key(delivery_id), urls.silence(delivery_id, tries), call.flow.speech
    )


def _take(session: Session, flows: FlowStore, call: _Notified, now: dt.datetime) -> Standing:
    return take(
        session, flows, call.message.id, by=call.who, via="voice", contact=call.contact, now=now
    )


def _connect(
    session: Session, flows: FlowStore, call: _Notified, turn: NotifyCallTurn, now: dt.datetime
) -> str:
    """Take the message and ring the caller back at once, showing the client's number."""
    standing = _take(session, flows, call, now)
    number = callback_number(call.message.caller, call.message.answers)
    if standing.verdict is not Verdict.yours or number is None:
        spoken = texts.CALL_NO_NUMBER if standing.verdict is Verdict.yours else _spoken(standing)
        return render_goodbye(spoken, call.flow.speech)
    if first_time(session, f"{turn.call_sid}:caller_called_back"):
        record_called_back(session, call.message, by=call.who, via="voice", now=now,
                           kind="caller_called_back", delivery=call.delivery.id)  # fmt: skip
    return render_connect(texts.CALL_CONNECTING, call.flow.numbers[0], number, call.flow.speech)


def _spoken(standing: Standing) -> str:
    match standing.verdict:
        case Verdict.yours | Verdict.open:
            return texts.CALL_TAKEN
        case Verdict.taken:
            return texts.call_taken_by_other(standing.holder or "Someone")
        case _:
            return texts.CALL_CLOSED
