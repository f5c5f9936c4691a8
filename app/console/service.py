"""The console's units of work: presence, taking a call, the screen pop, saving the message,
and wrap-up. Each function adds and flushes; the caller's unit of work commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.models import Role, User
from app.accounts.service import Principal
from app.calls.models import Call
from app.calls.queries import attachments
from app.clients.flows import FlowStore
from app.clients.models import Client
from app.console import queue, script
from app.console.board import PresenceRow, live_status, mask_caller, standing_of
from app.console.greeting import answer_phrase
from app.console.live import announce
from app.console.models import EntryStatus, Presence, QueueEntry
from app.console.presence import Standing, State, may_choose, may_take_calls, presence_now
from app.console.queries import EarlierMessage, Snapshot, earlier_messages, load_snapshot
from app.console.transfer import (
    CallFacts,
    TransferState,
    may_send_to_voicemail,
    refuse_transfer,
)
from app.dispatch.outbox import take_message
from app.flows import understanding
from app.flows.engine import SaveMessage
from app.flows.rota import who_is_on_call
from app.flows.schema import Flow
from app.messages.reads import Reader, log_reads
from app.timeutil import as_utc

log = logging.getLogger("nightdesk.console")


# --- presence -------------------------------------------------------------------------------


def heartbeat(session: Session, user_id: int, now: dt.datetime) -> None:
    """The PA's console is open: note it. A PA whose console had been gone long enough to count
    as offline stays offline until they choose otherwise."""
    row = session.get(Presence, user_id, with_for_update=True)
    if row is None:
        session.add(Presence(user_id=user_id, state=State.offline, since=now, last_seen=now))
        announce(session, f"presence:{user_id}")
        return
    standing = _standing(row, now)
    if standing.state is State.offline and row.state != State.offline:
        row.state, row.since, row.entry_id = State.offline, standing.since, None
        announce(session, f"presence:{user_id}")
    row.last_seen = now


def choose_presence(session: Session, user_id: int, wanted: State, now: dt.datetime) -> bool:
    """The PA sets their presence; False when they can't now (on a call, or in its wrap-up)."""
    row = session.get(Presence, user_id, with_for_update=True)
    if row is None:
        row = Presence(user_id=user_id, state=State.offline, since=now, last_seen=now)
        session.add(row)
    if not may_choose(_standing(row, now).state, wanted):
        return False
    row.state, row.since, row.last_seen, row.entry_id = wanted, now, now, None
    announce(session, f"presence:{user_id}")
    return True


def console_snapshot(session: Session, user_id: int, now: dt.datetime) -> Snapshot:
    """Opening the console counts as being seen; then what every console shows."""
    heartbeat(session, user_id, now)
    session.flush()
    return load_snapshot(session)


def _standing(row: Presence, now: dt.datetime) -> Standing:
    return presence_now(State(row.state), as_utc(row.since), as_utc(row.last_seen), now)


# --- taking a call ----------------------------------------------------------------------------


class Refusal(StrEnum):
    not_available = "not_available"
    no_phone = "no_phone"
    taken = "taken"


REFUSALS = {
    Refusal.not_available: "Set yourself available to take calls.",
    Refusal.no_phone: "Your account has no phone number to ring: ask an administrator to add "
    "one (nightdesk users add … --phone).",
    Refusal.taken: "Someone else took that call, or the caller has gone.",
}


@dataclass(frozen=True)
class Offer:
    """The call is this PA's to answer: ring their phone from the number the caller rang."""

    entry_id: int
    offer: int
    pa_phone: str
    from_number: str


def take_call(
    session: Session, entry_id: int, pa_id: int, now: dt.datetime, *, needs_phone: bool = True
) -> Offer | Refusal:
    """An available PA takes a waiting caller. Their presence row is locked first, so one PA
    clicking two callers at once gets one of them; the entry's conditional update makes sure
    one PA of many gets each caller. A PA answering in the browser needs no phone number."""
    row = session.get(Presence, pa_id, with_for_update=True)
    if row is None or not may_take_calls(_standing(row, now)):
        return Refusal.not_available
    phone = session.scalar(select(User.phone).where(User.id == pa_id))
    if not phone and needs_phone:
        return Refusal.no_phone
    offer = queue.claim(session, entry_id, pa_id, now)
    if offer is None:
        return Refusal.taken
    row.state, row.since, row.entry_id = State.on_call, now, entry_id
    announce(session, f"presence:{pa_id}")
    called = session.scalar(
        select(Call.called)
        .join(QueueEntry, QueueEntry.call_id == Call.id)
        .where(QueueEntry.id == entry_id)
    )
    log.info("call_taken", extra={"entry_id": entry_id, "user_id": pa_id, "offer": offer})
    return Offer(entry_id, offer, phone or "", called or "")


def finish_wrap_up(
    session: Session, entry_id: int, pa_id: int, notes: str, now: dt.datetime
) -> bool:
    """The PA is done with this call: their notes are kept and they are available again."""
    entry = session.get(QueueEntry, entry_id, with_for_update=True)
    if entry is None or entry.pa_id != pa_id:
        return False
    entry.notes = notes.strip() or None
    entry.wrapped_at = entry.wrapped_at or now
    row = session.get(Presence, pa_id, with_for_update=True)
    if row is not None and row.entry_id == entry_id:
        row.state, row.since, row.entry_id = State.available, now, None
        announce(session, f"presence:{pa_id}")
    announce(session, f"entry:{entry_id}")
    return True


# --- the screen pop ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OnCall:
    name: str
    phone: str | None


@dataclass(frozen=True)
class CallScreen:
    """Everything a PA needs while talking to the caller."""

    entry_id: int
    status: EntryStatus
    mine: bool  # this PA has the call (others, supervisors, only look)
    client: str
    caller: str  # masked until answered
    answer_phrase: str
    instructions: str
    on_call: OnCall | None
    earlier: list[EarlierMessage]
    questions: list[script.Question]
    values: dict[str, str]
    urgency: str
    message_id: int | None
    notes: str
    wrapped: bool
    standing: Standing
    ended: bool = False  # the PA's phone leg has ended
    offer: int = 0  # the current offer's number (a browser leg names it)
    pa_leg_known: bool = False  # the PA's leg (phone or browser) has reached Twilio
    transfer: TransferState | None = None
    transfer_to: str | None = None  # the contact's name
    can_transfer: bool = False
    can_send_to_voicemail: bool = False
    supervising: bool = False  # a supervisor looking at someone else's live call

    @property
    def live_status(self) -> str:
        """The status as live updates report it (`Snapshot.entry_status`): a call nobody has
        any more is "closed"."""
        if self.status in (EntryStatus.waiting, EntryStatus.offered):
            return self.status.value
        if self.status is EntryStatus.answered and not self.wrapped:
            return live_status(self.status.value, self.transfer)
        return "closed"

    @property
    def on_the_line(self) -> bool:
        """The caller and the PA are talking (or the caller is on hold for a transfer)."""
        return self.status is EntryStatus.answered and not self.ended

    @property
    def can_save(self) -> bool:
        return self.mine and self.status is EntryStatus.answered and self.message_id is None


def call_screen(
    session: Session, flows: FlowStore, entry_id: int, principal: Principal, now: dt.datetime
) -> CallScreen | None:
    """The screen pop for this entry: for its PA, and for supervisors; None for anyone else."""
    found = session.execute(
        select(QueueEntry, Call.flow_version_id, Client.name)
        .join(Call, Call.id == QueueEntry.call_id)
        .join(Client, Client.id == QueueEntry.client_id)
        .where(QueueEntry.id == entry_id)
    ).first()
    if found is None:
        return None
    entry, version_id, client_name = found
    if version_id is None:
        return None
    mine = entry.pa_id is not None and entry.pa_id == principal.user_id
    if not mine and principal.role not in (Role.supervisor, Role.admin):
        return None
    flow = flows.get(session, version_id)
    status = EntryStatus(entry.status)
    answered = status is EntryStatus.answered
    questions = script.questions(flow)
    presence = session.get(Presence, principal.user_id) if principal.user_id else None
    on_call = _on_call(flow, now)
    transfer = TransferState(entry.transfer_state) if entry.transfer_state else None
    facts = transfer_facts(entry, mine)
    contact = flow.contact(entry.transfer_contact) if entry.transfer_contact else None
    return CallScreen(
        entry_id=entry.id, status=status, mine=mine, client=client_name,
        caller=entry.caller if answered else mask_caller(entry.caller),
        answer_phrase=answer_phrase(
            flow.console.answer_phrase, flow.name, principal.name, flow.zone, now
        ),
        instructions=flow.console.instructions, on_call=_on_call(flow, now),
        earlier=_earlier(session, entry, principal, now),
        questions=questions, values=script.prefilled(questions, entry.answers),
        urgency=entry.urgency, message_id=entry.message_id, notes=entry.notes or "",
        wrapped=entry.wrapped_at is not None,
        standing=standing_of(_row(presence, principal), now),
        ended=entry.ended_at is not None, transfer=transfer, offer=entry.offers,
        pa_leg_known=entry.pa_call_sid is not None,
        transfer_to=contact.name if contact else None,
        can_transfer=refuse_transfer(facts, on_call.phone if on_call else None) is None,
        can_send_to_voicemail=may_send_to_voicemail(facts),
        supervising=not mine and principal.role in (Role.supervisor, Role.admin),
    )  # fmt: skip


def transfer_facts(entry: QueueEntry, mine: bool) -> CallFacts:
    """Where the entry stands, as a transfer's decisions need it."""
    return CallFacts(
        mine=mine, answered=entry.status == EntryStatus.answered,
        ended=entry.ended_at is not None, message_saved=entry.message_id is not None,
        conference_known=entry.conference_sid is not None,
        transfer=TransferState(entry.transfer_state) if entry.transfer_state else None,
    )  # fmt: skip


def _earlier(
    session: Session, entry: QueueEntry, principal: Principal, now: dt.datetime
) -> list[EarlierMessage]:
    """The caller's earlier messages; showing them is a read (logged in privacy mode)."""
    earlier = earlier_messages(session, entry.client_id, entry.caller, entry.call_id)
    reader = Reader(principal.name, principal.user_id)
    log_reads(session, [m.id for m in earlier], reader, "console", now)
    return earlier


def _row(presence: Presence | None, principal: Principal) -> PresenceRow | None:
    if presence is None:
        return None
    return PresenceRow(
        presence.user_id, principal.name, principal.role.value, State(presence.state),
        as_utc(presence.since), as_utc(presence.last_seen), presence.entry_id,
    )  # fmt: skip


def on_call_now(flow: Flow, now: dt.datetime) -> tuple[str, OnCall] | None:
    """The contact on call now, with their id in the flow."""
    if flow.rotation is None:
        return None
    key = who_is_on_call(flow.rotation, flow.zone, now)
    contact = flow.contact(key)
    return (key, OnCall(contact.name, contact.phone)) if contact else None


def _on_call(flow: Flow, now: dt.datetime) -> OnCall | None:
    found = on_call_now(flow, now)
    return found[1] if found else None


# --- saving the message -----------------------------------------------------------------------


class NotSaved(StrEnum):
    not_yours = "not_yours"
    not_answered = "not_answered"
    already = "already"


@dataclass(frozen=True)
class Saved:
    message_id: int


def save_message(
    session: Session,
    flows: FlowStore,
    entry_id: int,
    pa_id: int,
    submitted: dict[str, str],
    now: dt.datetime,
) -> Saved | script.Checked | NotSaved:
    """The PA's message for the caller, saved as the flow saves one: its notifications and the
    caller's receipt are owed in the same transaction. The PA moves to wrap-up."""
    entry = session.get(QueueEntry, entry_id, with_for_update=True)
    if entry is None or entry.pa_id != pa_id:
        return NotSaved.not_yours
    if entry.status != EntryStatus.answered:
        return NotSaved.not_answered
    if entry.message_id is not None:
        return NotSaved.already
    call = session.get(Call, entry.call_id)
    assert call is not None
    assert call.flow_version_id is not None
    flow = flows.get(session, call.flow_version_id)
    region = understanding.region_of(flow.numbers[0])
    checked = script.check(script.questions(flow), submitted, region, submitted.get("urgency", ""))
    if not checked.ok:
        return checked
    save = SaveMessage(urgency=checked.urgency, answers=checked.answers, outcome="message")
    message = take_message(session, call, flow, save, attachments(session, call.id), now)
    if message is None:
        return NotSaved.already
    entry.message_id = message.id
    queue.to_wrap_up(session, pa_id, entry_id, now)
    announce(session, f"entry:{entry_id}")
    log.info("pa_message_saved", extra={"entry_id": entry_id, "message_id": message.id})
    return Saved(message.id)


def called_number(session: Session, entry_id: int, pa_id: int) -> str | None:
    """The client's number the caller rang, for this PA's offered call (their browser's leg
    shows it); None when the call isn't on offer to them."""
    called: str | None = session.scalar(
        select(Call.called)
        .join(QueueEntry, QueueEntry.call_id == Call.id)
        .where(
            QueueEntry.id == entry_id,
            QueueEntry.pa_id == pa_id,
            QueueEntry.status == EntryStatus.offered.value,
        )
    )
    return called


def give_back(session: Session, entry_id: int, pa_id: int, offer: int, now: dt.datetime) -> bool:
    """The PA's browser couldn't reach the caller: back in line (only the PA's own offer)."""
    entry = session.get(QueueEntry, entry_id)
    if entry is None or entry.pa_id != pa_id:
        return False
    return queue.release(session, entry_id, offer, now)


def pa_leg_of(session: Session, entry_id: int, pa_id: int) -> str | None:
    """The PA's phone leg for their call, to hang it up from the console."""
    sid: str | None = session.scalar(
        select(QueueEntry.pa_call_sid).where(QueueEntry.id == entry_id, QueueEntry.pa_id == pa_id)
    )
    return sid
