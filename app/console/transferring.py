"""A warm transfer's units of work, from the PA's button to its end, and supervisors joining a
PA's call. Each adds and flushes; the caller's unit of work commits. The decisions are in
`transfer.py`; Twilio is reached by the routes, between units.

Every step of an attempt names it (`attempt`, counted on the entry like offers), and each
change is a conditional UPDATE on the state it expects, so a double click, a repeated
webhook or a late callback from an earlier attempt changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.acks.service import acknowledge
from app.calls.models import Call
from app.clients.flows import FlowStore
from app.clients.models import Contact
from app.console.live import announce
from app.console.models import EntryStatus, QueueEntry
from app.console.service import on_call_now, transfer_facts
from app.console.transfer import (
    IN_PROGRESS,
    JoinAs,
    Monitor,
    TransferRefusal,
    TransferState,
    contact_key_joins,
    contact_leg_fails_transfer,
    join_as,
    may_hand_over,
    may_send_to_voicemail,
    refuse_transfer,
)
from app.flows.schema import Flow, Speech
from app.messages.models import Message
from app.messages.timeline import add_event
from app.webhooks.events import message_event

log = logging.getLogger("nightdesk.console")

ENTRIES = QueueEntry.metadata.tables[QueueEntry.__tablename__]

CALLER_GONE = "Sorry, the caller is no longer on the line. Goodbye."
DECLINED = "No problem: the assistant will take a message for you. Goodbye."


@dataclass(frozen=True)
class Ringing:
    """A transfer has started: put the caller on hold and ring the contact."""

    entry_id: int
    attempt: int
    conference_sid: str
    caller_sid: str
    to: str  # the contact's phone
    from_: str  # the client's number the caller rang


def start_transfer(
    session: Session, flows: FlowStore, entry_id: int, pa_id: int, now: dt.datetime
) -> Ringing | TransferRefusal:
    """The PA asks to transfer their caller to whoever is on call now. One transfer at a time:
    however many clicks read the entry at once, the UPDATE succeeds only from no transfer (or a
    failed one), so one of them rings the contact."""
    found = session.execute(
        select(QueueEntry, Call.sid, Call.called, Call.flow_version_id)
        .join(Call, Call.id == QueueEntry.call_id)
        .where(QueueEntry.id == entry_id)
    ).first()
    if found is None:
        return TransferRefusal.not_yours
    entry, caller_sid, called, version_id = found
    if version_id is None:
        return TransferRefusal.not_yours
    flow = flows.get(session, version_id)
    on_call = on_call_now(flow, now)
    phone = on_call[1].phone if on_call else None
    refusal = refuse_transfer(transfer_facts(entry, entry.pa_id == pa_id), phone)
    if refusal is not None:
        return refusal
    assert on_call is not None
    assert phone is not None
    assert entry.conference_sid is not None
    attempt = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.ended_at.is_(None),  # the PA's leg may have ended since it was read
            (ENTRIES.c.transfer_state.is_(None))
            | (ENTRIES.c.transfer_state == TransferState.failed.value),
        )
        .values(
            transfer_state=TransferState.calling.value, transfers=ENTRIES.c.transfers + 1,
            transfer_contact=on_call[0], transfer_call_sid=None,
        )
        .returning(ENTRIES.c.transfers)
    ).scalar()  # fmt: skip
    if attempt is None:
        return TransferRefusal.busy
    assert entry.message_id is not None
    add_event(session, entry.message_id, "transfer_started", now, to=on_call[1].name)
    announce(session, f"entry:{entry_id}")
    log.info("transfer_started", extra={"entry_id": entry_id, "attempt": attempt})
    return Ringing(entry_id, attempt, entry.conference_sid, caller_sid, phone, called or "")


def note_contact_leg(session: Session, entry_id: int, attempt: int, call_sid: str) -> None:
    """The contact's leg for this attempt, from Twilio's answer or its first webhook."""
    session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.transfers == attempt,
            ENTRIES.c.transfer_call_sid.is_(None),
        )
        .values(transfer_call_sid=call_sid)
    )


@dataclass(frozen=True)
class BackToPa:
    """The transfer failed: take the caller off hold, with the PA again."""

    conference_sid: str
    caller_sid: str


def transfer_failed(
    session: Session, entry_id: int, attempt: int, reason: str, now: dt.datetime
) -> BackToPa | None:
    """The contact didn't take the caller (no answer, busy, no key, hung up before the hand
    over, or Twilio refused): the caller is to come off hold. The message the PA saved keeps
    escalating as any message does. None when this attempt had already moved on."""
    row = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.transfers == attempt,
            ENTRIES.c.transfer_state.in_([s.value for s in IN_PROGRESS]),
        )
        .values(transfer_state=TransferState.failed.value)
        .returning(ENTRIES.c.conference_sid, ENTRIES.c.call_id, ENTRIES.c.message_id)
    ).first()
    if row is None:
        return None
    if row.message_id is not None:
        add_event(session, row.message_id, "transfer_failed", now, reason=reason)
    announce(session, f"entry:{entry_id}")
    log.info("transfer_failed", extra={"entry_id": entry_id, "reason": reason})
    caller_sid = session.scalar(select(Call.sid).where(Call.id == row.call_id))
    return BackToPa(row.conference_sid, caller_sid or "")


# --- the contact's leg, from Twilio's side -------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """The entry's current transfer attempt, as the contact's leg sees it."""

    state: TransferState | None
    current: bool  # the webhook's attempt is the entry's latest
    caller_on_line: bool  # the PA's conversation hasn't ended
    client_name: str
    speech: Speech


def attempt_of(session: Session, flows: FlowStore, entry_id: int, attempt: int) -> Attempt | None:
    found = session.execute(
        select(QueueEntry, Call.flow_version_id)
        .join(Call, Call.id == QueueEntry.call_id)
        .where(QueueEntry.id == entry_id)
    ).first()
    if found is None:
        return None
    entry, version_id = found
    flow: Flow | None = flows.get(session, version_id) if version_id is not None else None
    return Attempt(
        state=TransferState(entry.transfer_state) if entry.transfer_state else None,
        current=entry.transfers == attempt, caller_on_line=entry.ended_at is None,
        client_name=flow.name if flow else "a client", speech=flow.speech if flow else Speech(),
    )  # fmt: skip


def contact_may_join(found: Attempt | None) -> bool:
    return (
        found is not None
        and found.current
        and found.state is TransferState.calling
        and found.caller_on_line
    )


def contact_keyed(found: Attempt | None, digits: str | None) -> bool:
    """The contact pressed a key (or nothing): only 1, on a live attempt, puts them through."""
    return contact_may_join(found) and contact_key_joins(digits)


@dataclass(frozen=True)
class Briefing:
    """The contact has joined: from now on the PA's leaving must not end the conference."""

    conference_sid: str
    pa_sid: str


def contact_joined(session: Session, entry_id: int, attempt: int, call_sid: str) -> Briefing | None:
    """The contact is in the conference: the PA briefs them while the caller is on hold."""
    row = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.transfers == attempt,
            ENTRIES.c.transfer_state == TransferState.calling.value,
        )
        .values(transfer_state=TransferState.connected.value, transfer_call_sid=call_sid)
        .returning(ENTRIES.c.conference_sid, ENTRIES.c.pa_call_sid)
    ).first()
    if row is None:
        return None
    announce(session, f"entry:{entry_id}")
    log.info("transfer_contact_joined", extra={"entry_id": entry_id, "attempt": attempt})
    return Briefing(row.conference_sid, row.pa_call_sid)


def contact_leg_status(
    session: Session, entry_id: int, attempt: int, call_sid: str, status: str, now: dt.datetime
) -> BackToPa | None:
    """The contact's leg's status callback: ending before the hand over fails the transfer."""
    note_contact_leg(session, entry_id, attempt, call_sid)
    entry = session.get(QueueEntry, entry_id)
    if entry is None:
        return None
    state = TransferState(entry.transfer_state) if entry.transfer_state else None
    if not contact_leg_fails_transfer(state, entry.transfers == attempt, status):
        return None
    reason = "no key" if status == "completed" and state is TransferState.calling else status
    return transfer_failed(session, entry_id, attempt, reason, now)


# --- the hand over ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HandOver:
    """Leave the caller with the contact: Twilio's participants, by call sid."""

    attempt: int
    conference_sid: str
    caller_sid: str
    contact_sid: str
    pa_sid: str


def hand_over_of(session: Session, entry_id: int, pa_id: int) -> HandOver | None:
    """This PA's call, with the contact on the line: what to hand over; None otherwise."""
    which = and_(QueueEntry.id == entry_id, QueueEntry.pa_id == pa_id)
    return _hand_over(session, which, pa_still_on=True)


def pa_left(session: Session, entry_id: int, pa_call_sid: str) -> HandOver | None:
    """The PA's leg ended while the contact was on the line: they left by hanging up, which is
    a hand over too (their leaving no longer ends the conference). None otherwise."""
    which = and_(QueueEntry.id == entry_id, QueueEntry.pa_call_sid == pa_call_sid)
    return _hand_over(session, which, pa_still_on=False)


def _hand_over(
    session: Session, which: ColumnElement[bool], *, pa_still_on: bool
) -> HandOver | None:
    found = session.execute(
        select(QueueEntry, Call.sid).join(Call, Call.id == QueueEntry.call_id).where(which)
    ).first()
    if found is None:
        return None
    entry, caller_sid = found
    state = TransferState(entry.transfer_state) if entry.transfer_state else None
    if not may_hand_over(state) or (pa_still_on and entry.ended_at is not None):
        return None
    if not (entry.conference_sid and entry.transfer_call_sid and entry.pa_call_sid):
        return None
    return HandOver(
        entry.transfers, entry.conference_sid, caller_sid, entry.transfer_call_sid,
        entry.pa_call_sid,
    )  # fmt: skip


def handed_over(
    session: Session, flows: FlowStore, entry_id: int, attempt: int, pa_name: str,
    now: dt.datetime,
) -> bool:  # fmt: skip
    """The caller is with the contact: the message is theirs (its escalation stops) and the
    caller counts as called back, on the message's timeline."""
    row = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.transfers == attempt,
            ENTRIES.c.transfer_state == TransferState.connected.value,
        )
        .values(transfer_state=TransferState.handed_over.value)
        .returning(ENTRIES.c.message_id, ENTRIES.c.client_id, ENTRIES.c.transfer_contact)
    ).first()
    if row is None:
        return False
    announce(session, f"entry:{entry_id}")
    if row.message_id is None:
        return True
    contact = session.scalar(
        select(Contact).where(
            Contact.client_id == row.client_id, Contact.key == row.transfer_contact
        )
    )
    name = contact.name if contact else (row.transfer_contact or "the on-call contact")
    acknowledge(session, flows, row.message_id, by=name, via="transfer", now=now, contact=contact)
    message = session.get(Message, row.message_id, with_for_update=True)
    assert message is not None
    if message.called_back_at is None:
        message.called_back_at = now
    add_event(session, message.id, "called_back", now, by=name, via="transfer",
              note=f"Warm transfer from {pa_name}" if pa_name else "Warm transfer")  # fmt: skip
    message_event(session, message, "message.called_back", now)
    log.info("transfer_handed_over", extra={"entry_id": entry_id, "message_id": message.id})
    return True


# --- the flow's voicemail ---------------------------------------------------------------------


def voicemail_of(session: Session, entry_id: int, pa_id: int) -> str | None:
    """The caller's call sid, to send them on to the flow's voicemail: only the PA's own caller,
    on the line with them, with no message saved and no transfer under way."""
    found = session.execute(
        select(QueueEntry, Call.sid)
        .join(Call, Call.id == QueueEntry.call_id)
        .where(QueueEntry.id == entry_id, QueueEntry.pa_id == pa_id)
    ).first()
    if found is None:
        return None
    entry, caller_sid = found
    facts = transfer_facts(entry, mine=True)
    if not may_send_to_voicemail(facts):
        return None
    log.info("caller_to_voicemail", extra={"entry_id": entry_id})
    sid: str = caller_sid
    return sid


def caller_turn(session: Session, entry_id: int, call_sid: str) -> int | None:
    """The caller's current turn, for the flow to carry on from its queue step; None when the
    webhook isn't from this entry's caller."""
    found = session.execute(
        select(Call.sid, Call.turn)
        .join(QueueEntry, QueueEntry.call_id == Call.id)
        .where(QueueEntry.id == entry_id)
    ).first()
    if found is None or found.sid != call_sid:
        return None
    turn: int = found.turn
    return turn


# --- supervisors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Joining:
    """A supervisor joins a PA's live call: ring their phone into the conference."""

    conference_sid: str
    to: str
    from_: str
    join: JoinAs


def monitor_call(
    session: Session, entry_id: int, supervisor_id: int, mode: Monitor
) -> Joining | str:
    """A supervisor asks to listen to, whisper to, or join a PA's live call: their own phone is
    rung into the PA's conference. A problem's name when they can't now."""
    found = session.execute(
        select(QueueEntry, Call.called)
        .join(Call, Call.id == QueueEntry.call_id)
        .where(QueueEntry.id == entry_id)
    ).first()
    if found is None:
        return "gone"
    entry, called = found
    if entry.status != EntryStatus.answered or entry.ended_at is not None:
        return "gone"
    if entry.conference_sid is None or entry.pa_call_sid is None:
        return "gone"
    phone = session.scalar(select(User.phone).where(User.id == supervisor_id))
    if not phone:
        return "no_phone"
    log.info("supervisor_joins", extra={"entry_id": entry_id, "mode": mode.value})
    return Joining(entry.conference_sid, phone, called or "", join_as(mode, entry.pa_call_sid))
