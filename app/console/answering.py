"""The PA's phone leg, from Twilio's side: the whisper, the PA's key, their joining the
conference (and only then the caller's move in), and the leg's end.

Every webhook names its queue entry and offer; one that speaks of an offer that has moved on
(an earlier leg that failed, a caller who has gone) changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calls.models import Call
from app.calls.queries import attachments
from app.clients.flows import FlowStore
from app.console import queue
from app.console.live import announce
from app.console.models import EntryStatus, QueueEntry
from app.console.voice import (
    render_caller_joins,
    render_pa_joins,
    render_say_goodbye,
    render_whisper,
)
from app.dispatch.outbox import take_message
from app.flows.engine import SaveMessage
from app.flows.schema import Speech, Urgency

log = logging.getLogger("nightdesk.console")

FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
GONE = "The caller is no longer waiting. Goodbye."
DECLINED = "No problem: the caller stays in line for the next assistant. Goodbye."
CALLER_LEFT = "Sorry, the caller hung up before you were connected. Goodbye."


@dataclass(frozen=True)
class ConsoleUrls:
    """The URLs Twilio calls for a console call, from the public base URL."""

    base: str

    def _url(self, path: str, entry_id: int, offer: int | None = None) -> str:
        tail = f"&offer={offer}" if offer is not None else ""
        return f"{self.base}/twilio/console/{path}?entry={entry_id}{tail}"

    def browser(self, entry_id: int, offer: int) -> str:
        return self._url("browser", entry_id, offer)

    def whisper(self, entry_id: int, offer: int) -> str:
        return self._url("whisper", entry_id, offer)

    def accept(self, entry_id: int, offer: int) -> str:
        return self._url("accept", entry_id, offer)

    def silence(self, entry_id: int, offer: int) -> str:
        return self.accept(entry_id, offer) + "&silence=1"

    def leg_status(self, entry_id: int, offer: int) -> str:
        return self._url("leg-status", entry_id, offer)

    def conference(self, entry_id: int, offer: int) -> str:
        return self._url("conference", entry_id, offer)

    def connect(self, entry_id: int) -> str:
        return self._url("connect", entry_id)

    def after(self, entry_id: int) -> str:
        return self._url("after", entry_id)

    def voicemail(self, entry_id: int) -> str:
        return self._url("voicemail", entry_id)

    def caller_joined(self, entry_id: int) -> str:
        return self._url("caller-joined", entry_id)

    # A warm transfer's attempt: the on-call contact's leg, its key and its conference.

    def transfer_whisper(self, entry_id: int, attempt: int) -> str:
        return self._url("transfer/whisper", entry_id) + f"&attempt={attempt}"

    def transfer_accept(self, entry_id: int, attempt: int) -> str:
        return self._url("transfer/accept", entry_id) + f"&attempt={attempt}"

    def transfer_silence(self, entry_id: int, attempt: int) -> str:
        return self.transfer_accept(entry_id, attempt) + "&silence=1"

    def transfer_status(self, entry_id: int, attempt: int) -> str:
        return self._url("transfer/status", entry_id) + f"&attempt={attempt}"

    def transfer_conference(self, entry_id: int, attempt: int) -> str:
        return self._url("transfer/conference", entry_id) + f"&attempt={attempt}"


@dataclass(frozen=True)
class Gone:
    """The PA joined, but their caller had already left: tell the PA and let them go."""

    pa_call_sid: str


@dataclass(frozen=True)
class Move:
    """Take this caller out of their queue and into the PA's conference."""

    entry_id: int
    queue_name: str
    call_sid: str
    pa_call_sid: str


def whisper(
    session: Session, flows: FlowStore, entry_id: int, offer: int, call_sid: str,
    urls: ConsoleUrls,
) -> str:  # fmt: skip
    """The PA picked up: whose caller it is, and 1 to take it."""
    found = queue.offered(session, entry_id)
    if found is None or not found.is_current(offer):
        return render_say_goodbye(GONE, Speech())
    queue.note_pa_leg(session, entry_id, offer, call_sid)
    speech = _speech(session, flows, found.flow_version_id)
    accept, silence = urls.accept(entry_id, offer), urls.silence(entry_id, offer)
    return render_whisper(found.client_name, accept, silence, speech)


def accept(
    session: Session, flows: FlowStore, entry_id: int, offer: int, digits: str | None,
    urls: ConsoleUrls,
) -> str:  # fmt: skip
    """1: into the conference. Anything else, or nothing: the caller stays in line, and the
    leg's end gives them back to the queue."""
    found = queue.offered(session, entry_id)
    if found is None or not found.is_current(offer):
        return render_say_goodbye(GONE, Speech())
    speech = _speech(session, flows, found.flow_version_id)
    if digits != "1":
        return render_say_goodbye(DECLINED, speech)
    return render_pa_joins(entry_id, urls.conference(entry_id, offer), speech)


def browser_leg(
    session: Session, flows: FlowStore, entry_id: int, offer: int, identity: str, call_sid: str,
    urls: ConsoleUrls,
) -> str:  # fmt: skip
    """The PA's browser placed the call (the TwiML App's Voice URL): straight into the
    conference, no whisper, as long as the offer is this browser's PA's and still current."""
    found = queue.offered(session, entry_id)
    if found is None or not found.is_current(offer) or found.pa_id is None:
        return render_say_goodbye(GONE, Speech())
    if identity != f"client:pa-{found.pa_id}":
        log.warning("browser_leg_of_another", extra={"entry_id": entry_id})
        return render_say_goodbye(GONE, Speech())
    queue.note_pa_leg(session, entry_id, offer, call_sid)
    speech = _speech(session, flows, found.flow_version_id)
    return render_pa_joins(entry_id, urls.conference(entry_id, offer), speech)


def conference_event(
    session: Session, entry_id: int, offer: int, event: str, call_sid: str, now: dt.datetime
) -> Move | Gone | None:
    """The PA has joined the conference: the call is theirs, and the caller is to be moved in
    (or, if the caller left meanwhile, the PA is told)."""
    if event == "participant-leave":
        # The PA's leg left: a browser leg reports its end only here (a TwiML App's calls
        # have no status callback of ours); for a phone leg this repeats its status callback.
        found = queue.offered(session, entry_id)
        if found is not None and found.status is EntryStatus.answered:
            queue.conversation_ended(session, entry_id, offer, call_sid, now)
        return None
    if event != "participant-join":
        return None
    found = queue.offered(session, entry_id)
    if found is None or found.offer != offer:
        return None
    if found.pa_call_sid not in (None, call_sid):
        return None  # someone else's leg (the caller's join goes to /caller-joined)
    if found.status in (EntryStatus.abandoned, EntryStatus.timed_out):
        return Gone(call_sid)
    if not queue.answer(session, entry_id, offer, call_sid, now):
        return None
    return Move(entry_id, found.queue_name, found.call_sid, call_sid)


def connect(entry_id: int, urls: ConsoleUrls) -> str:
    """The caller's TwiML once taken out of the queue: the PA's conference."""
    return render_caller_joins(entry_id, urls.after(entry_id), urls.caller_joined(entry_id))


def caller_joined(session: Session, entry_id: int, call_sid: str, conference_sid: str) -> None:
    """The caller is in the PA's conference (Twilio's `conference_sid`): from now on the
    conference's participants (the caller's hold, a supervisor) can be changed through it."""
    caller_sid = session.scalar(
        select(Call.sid)
        .join(QueueEntry, QueueEntry.call_id == Call.id)
        .where(QueueEntry.id == entry_id)
    )
    if caller_sid != call_sid:
        return  # only the caller's own join says the caller is there
    entry = session.get(QueueEntry, entry_id)
    if entry is not None and entry.conference_sid != conference_sid:
        entry.conference_sid = conference_sid
        announce(session, f"entry:{entry_id}")


def after(session: Session, flows: FlowStore, entry_id: int) -> str:
    """The caller's conference has ended: the client's goodbye."""
    entry = session.get(QueueEntry, entry_id)
    call = session.get(Call, entry.call_id) if entry else None
    if call is None or call.flow_version_id is None:
        return render_say_goodbye("Goodbye.", Speech())
    flow = flows.get(session, call.flow_version_id)
    return render_say_goodbye(flow.goodbye, flow.speech)


def leg_status(
    session: Session, entry_id: int, offer: int, call_sid: str, status: str, now: dt.datetime
) -> None:
    """The PA's leg's status callback: a leg that ended before the PA had the caller gives the
    caller back to the queue; one that ends after sends the PA to wrap-up."""
    queue.note_pa_leg(session, entry_id, offer, call_sid)
    if status not in FINAL_STATUSES:
        return
    found = queue.offered(session, entry_id)
    if found is None or found.offer != offer:
        return
    if found.status is EntryStatus.offered:
        queue.release(session, entry_id, offer, now)
    elif found.status is EntryStatus.answered:
        queue.conversation_ended(session, entry_id, offer, call_sid, now)


def caller_gone(session: Session, flows: FlowStore, entry_id: int, now: dt.datetime) -> None:
    """Moving the caller failed: they hung up as the PA joined. Their wait was abandoned, and
    they leave a partial message as any caller who hangs up does."""
    call_id = queue.caller_gone_after_answer(session, entry_id, now)
    entry = session.get(QueueEntry, entry_id)
    call = session.get(Call, call_id) if call_id is not None else None
    if entry is None or call is None or call.flow_version_id is None:
        return
    flow = flows.get(session, call.flow_version_id)
    save = SaveMessage(urgency=Urgency(entry.urgency), answers=dict(entry.answers),
                       outcome="partial")  # fmt: skip
    take_message(session, call, flow, save, attachments(session, call.id), now)
    log.warning("caller_gone_as_pa_joined", extra={"entry_id": entry_id})


def caller_left_twiml() -> str:
    return render_say_goodbye(CALLER_LEFT, Speech())


def _speech(session: Session, flows: FlowStore, version_id: int | None) -> Speech:
    return flows.get(session, version_id).speech if version_id is not None else Speech()
