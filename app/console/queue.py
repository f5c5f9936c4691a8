"""Queue entries through their life: recorded from the call path when a caller starts waiting,
taken by exactly one PA, answered when the PA joins on their phone, ended when the caller
leaves. Each function is one step of a unit of work: it adds and flushes, the caller commits.

Taking is a conditional UPDATE (`... WHERE status = 'waiting'`): however many PAs click at
once, the database lets one row change and the rowcount tells each PA whether it was theirs.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.calls.models import Call
from app.clients.models import Client
from app.console.live import announce
from app.console.models import OPEN, EntryStatus, Presence, QueueEntry
from app.console.presence import State
from app.flows.engine import CallState, Enqueue, Turn
from app.flows.schema import Flow, QueueStep
from app.messages.service import CallFacts

log = logging.getLogger("nightdesk.console")

ENTRIES = QueueEntry.metadata.tables[QueueEntry.__tablename__]
PRESENCE = Presence.metadata.tables[Presence.__tablename__]
CALLS = Call.metadata.tables[Call.__tablename__]

# How the flow's wait ended (Twilio's QueueResult), for an entry no PA had.
# https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action-parameters
LEFT_BY = {"hangup": EntryStatus.abandoned}  # anything else: the flow went on without a PA
NOT_AN_ENDING = {"bridged", "redirected"}  # a PA has it: the console tells that story


class QueueRecorder:
    """Listens to the call path's turns: a caller reaching a `queue` step starts waiting; a
    caller leaving the queue (hold limit, hang-up) ends their wait. Runs in the turn's unit of
    work, so the entry and the turn are stored together or not at all."""

    def turn_stored(
        self, session: Session, call: CallFacts, flow: Flow | None, turn: Turn, now: dt.datetime
    ) -> None:
        if flow is None or call.client_id is None:
            return
        for action in turn.actions:
            if isinstance(action, Enqueue):
                start_waiting(session, call, call.client_id, action.queue, turn.state, now)
        for note in turn.notes:
            if note.kind == "queue_ended" and note.detail.get("result") not in NOT_AN_ENDING:
                status = LEFT_BY.get(str(note.detail.get("result")), EntryStatus.timed_out)
                stop_waiting(session, call.id, status, now)
            elif note.kind == "hung_up" and isinstance(flow.steps.get(turn.state.step), QueueStep):
                stop_waiting(session, call.id, EntryStatus.abandoned, now)


def start_waiting(
    session: Session,
    call: CallFacts,
    client_id: int,
    queue_name: str,
    state: CallState,
    now: dt.datetime,
) -> None:
    """A caller starts waiting, with what they have said so far."""
    entry_id: int = session.execute(
        insert(ENTRIES)
        .values(
            call_id=call.id, client_id=client_id, queue_name=queue_name, caller=call.caller,
            answers=dict(state.answers), urgency=state.urgency.value,
            status=EntryStatus.waiting.value, enqueued_at=now, offers=0,
        )
        .returning(ENTRIES.c.id)
    ).scalar_one()  # fmt: skip
    announce(session, f"entry:{entry_id}")
    log.info("caller_waiting", extra={"call_sid": call.sid, "entry_id": entry_id})


def stop_waiting(session: Session, call_id: int, status: EntryStatus, now: dt.datetime) -> None:
    """The caller left the queue before a PA had them; a PA whose phone was ringing for them is
    free again."""
    ended = session.execute(
        update(ENTRIES)
        .where(ENTRIES.c.call_id == call_id, ENTRIES.c.status.in_(OPEN))
        .values(status=status.value, ended_at=now)
        .returning(ENTRIES.c.id, ENTRIES.c.pa_id)
    ).all()
    for row in ended:
        entry_id, pa_id = row.id, row.pa_id
        if pa_id is not None:
            _free_pa(session, pa_id, entry_id, now)
        announce(session, f"entry:{entry_id}")
        log.info("caller_left_queue", extra={"entry_id": entry_id, "status": status.value})


# --- a PA takes a call ----------------------------------------------------------------------


def claim(session: Session, entry_id: int, pa_id: int, now: dt.datetime) -> int | None:
    """Take a waiting caller for this PA: the offer's number if this PA won, None if the caller
    was no longer waiting (another PA was quicker, or they left)."""
    offer = session.execute(
        update(ENTRIES)
        .where(ENTRIES.c.id == entry_id, ENTRIES.c.status == EntryStatus.waiting.value)
        .values(
            status=EntryStatus.offered.value, pa_id=pa_id, offered_at=now, pa_call_sid=None,
            offers=ENTRIES.c.offers + 1,
        )
        .returning(ENTRIES.c.offers)
    ).scalar()  # fmt: skip
    if offer is not None:
        announce(session, f"entry:{entry_id}")
    return offer


def release(session: Session, entry_id: int, offer: int, now: dt.datetime) -> bool:
    """The PA's phone didn't take the caller (no answer, busy, no key, a failure): the caller is
    still in line, waiting for the next PA. False when the offer had moved on already."""
    current = (
        ENTRIES.c.id == entry_id,
        ENTRIES.c.status == EntryStatus.offered.value,
        ENTRIES.c.offers == offer,
    )
    # The PA it was offered to, read first: RETURNING would give the new, empty, pa_id.
    pa_id = session.execute(select(ENTRIES.c.pa_id).where(*current).with_for_update()).scalar()
    if pa_id is None:
        return False
    session.execute(
        update(ENTRIES)
        .where(*current)
        .values(status=EntryStatus.waiting.value, pa_id=None, pa_call_sid=None, offered_at=None)
    )
    _free_pa(session, pa_id, entry_id, now)
    announce(session, f"entry:{entry_id}")
    log.info("offer_released", extra={"entry_id": entry_id, "offer": offer})
    return True


def note_pa_leg(session: Session, entry_id: int, offer: int, call_sid: str) -> None:
    """The PA's phone leg for this offer, as soon as either Twilio's answer or its first
    webhook names it (whichever comes first)."""
    session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.offers == offer,
            ENTRIES.c.pa_call_sid.is_(None),
        )
        .values(pa_call_sid=call_sid)
    )


@dataclass(frozen=True)
class Offered:
    """An entry on offer to a PA, as the PA's phone leg needs it."""

    entry_id: int
    offer: int
    status: EntryStatus
    pa_id: int | None
    pa_call_sid: str | None
    call_id: int
    call_sid: str
    caller: str
    called: str  # the client's number the caller rang: the PA's phone shows it
    queue_name: str
    client_name: str
    flow_version_id: int | None

    def is_current(self, offer: int) -> bool:
        return self.status is EntryStatus.offered and self.offer == offer


def offered(session: Session, entry_id: int) -> Offered | None:
    row: Any = session.execute(
        select(
            ENTRIES.c.id, ENTRIES.c.offers, ENTRIES.c.status, ENTRIES.c.pa_id,
            ENTRIES.c.pa_call_sid, ENTRIES.c.call_id, CALLS.c.sid, ENTRIES.c.caller,
            CALLS.c.called, ENTRIES.c.queue_name, Client.name, CALLS.c.flow_version_id,
        )
        .join(CALLS, CALLS.c.id == ENTRIES.c.call_id)
        .join(Client, Client.id == ENTRIES.c.client_id)
        .where(ENTRIES.c.id == entry_id)
    ).first()  # fmt: skip
    if row is None:
        return None
    entry_id, offer, status, *rest = row
    return Offered(entry_id, offer, EntryStatus(status), *rest)


def answer(session: Session, entry_id: int, offer: int, pa_call_sid: str, now: dt.datetime) -> bool:
    """The PA pressed 1 and has joined the conference: the call is theirs. The caller's call
    now counts as a person reached, so hanging up saves no partial message over the one the
    PA is writing. False when the caller left first."""
    answered = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.status == EntryStatus.offered.value,
            ENTRIES.c.offers == offer,
        )
        .values(status=EntryStatus.answered.value, answered_at=now, pa_call_sid=pa_call_sid)
        .returning(ENTRIES.c.call_id)
    ).scalar()
    if answered is None:
        return False
    stored: dict[str, Any] = session.execute(
        select(CALLS.c.state).where(CALLS.c.id == answered).with_for_update()
    ).scalar_one()
    state = replace(CallState.from_json(stored), person_reached=True)
    session.execute(update(CALLS).where(CALLS.c.id == answered).values(state=state.to_json()))
    announce(session, f"entry:{entry_id}")
    log.info("call_answered", extra={"entry_id": entry_id})
    return True


def conversation_ended(
    session: Session, entry_id: int, offer: int, pa_call_sid: str, now: dt.datetime
) -> None:
    """The PA's phone leg ended after taking the caller: the PA moves to wrap-up."""
    row = session.execute(
        update(ENTRIES)
        .where(
            ENTRIES.c.id == entry_id,
            ENTRIES.c.status == EntryStatus.answered.value,
            ENTRIES.c.offers == offer,
            ENTRIES.c.pa_call_sid == pa_call_sid,
            ENTRIES.c.ended_at.is_(None),
        )
        .values(ended_at=now)
        .returning(ENTRIES.c.pa_id)
    ).scalar()
    if row is not None:
        to_wrap_up(session, row, entry_id, now)
        announce(session, f"entry:{entry_id}")


def caller_gone_after_answer(session: Session, entry_id: int, now: dt.datetime) -> int | None:
    """Moving the caller in failed (they hung up as the PA joined): the entry is abandoned after
    all. Returns the call's id, so the caller's partial message can be saved."""
    row = session.execute(
        update(ENTRIES)
        .where(ENTRIES.c.id == entry_id, ENTRIES.c.status == EntryStatus.answered.value)
        .values(status=EntryStatus.abandoned.value, ended_at=now)
        .returning(ENTRIES.c.call_id, ENTRIES.c.pa_id)
    ).first()
    if row is None:
        return None
    if row.pa_id is not None:
        _free_pa(session, row.pa_id, entry_id, now)
    announce(session, f"entry:{entry_id}")
    call_id: int = row.call_id
    return call_id


# --- presence changes that follow from calls ------------------------------------------------


def to_wrap_up(session: Session, pa_id: int, entry_id: int, now: dt.datetime) -> None:
    """The PA's conversation (or its message) is done: wrap-up time."""
    _set_presence_if(session, pa_id, State.on_call, entry_id, State.wrap_up, now)


def _free_pa(session: Session, pa_id: int, entry_id: int, now: dt.datetime) -> None:
    _set_presence_if(session, pa_id, State.on_call, entry_id, State.available, now)


def _set_presence_if(
    session: Session,
    pa_id: int,
    was: State,
    entry_id: int,
    becomes: State,
    now: dt.datetime,
) -> None:
    """Move a PA from `was` (for this entry) to `becomes`; a PA who has moved on is left be."""
    changed = session.execute(
        update(PRESENCE)
        .where(
            PRESENCE.c.user_id == pa_id,
            PRESENCE.c.state == was.value,
            PRESENCE.c.entry_id == entry_id,
        )
        .values(
            state=becomes.value,
            since=now,
            entry_id=entry_id if becomes is State.wrap_up else None,
        )
    )
    if changed.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
        announce(session, f"presence:{pa_id}")
