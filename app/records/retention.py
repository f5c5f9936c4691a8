"""What is due for purging under a client's retention setting: a pure decision of plain rows
and an instant.

Age alone decides, not status. A message still open (nobody acknowledged it, or nobody closed
it) is purged like any other once it is older than the client's `days`: retention is a promise
to the client's own callers about how long their words are kept, and a promise kept only for
messages someone remembered to close is no promise. It is not silent: the flow schema refuses
fewer than 7 days (escalation, callbacks and the morning summary are long over by then), every
purge counts how many of its messages were never acknowledged in its audit entry and its log
line, and `nightdesk purge --dry-run` lists them first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from app.flows.schema import RetentionSettings

# Statuses in which nobody has taken the message: purging one is worth saying out loud.
NOT_ACKNOWLEDGED = frozenset({"new", "notified", "unacknowledged"})


@dataclass(frozen=True)
class Record:
    """A message with its call, or a call that left no message: purged together or not at all.
    `taken_at` is when the message was taken (or the call started, for a call alone)."""

    message_id: int | None
    call_id: int | None
    taken_at: dt.datetime
    status: str | None = None
    recording_sid: str | None = None
    recording_url: str | None = None


@dataclass(frozen=True)
class PurgePlan:
    """What one purge removes. `recordings` are the sids to delete at Twilio as well."""

    message_ids: tuple[int, ...] = ()
    call_ids: tuple[int, ...] = ()
    recording_links: int = 0
    recordings: tuple[str, ...] = ()
    never_acknowledged: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.message_ids and not self.call_ids

    def counts(self) -> dict[str, int]:
        """For the audit entry and the log."""
        return {
            "messages": len(self.message_ids),
            "calls": len(self.call_ids),
            "recording_links": self.recording_links,
            "recordings_to_delete_at_twilio": len(self.recordings),
            "never_acknowledged": len(self.never_acknowledged),
        }


def purge_before(retention: RetentionSettings, now: dt.datetime) -> dt.datetime:
    """Records taken strictly before this instant are due: `days` whole days of 24 hours, so
    a clock change in the client's zone moves nothing."""
    return now - dt.timedelta(days=retention.days)


def due_for_purge(
    retention: RetentionSettings | None, records: Iterable[Record], now: dt.datetime
) -> PurgePlan:
    """Of `records`, those older than the client keeps them; none without a retention setting."""
    if retention is None:
        return PurgePlan()
    before = purge_before(retention, now)
    due = [record for record in records if record.taken_at < before]
    return PurgePlan(
        message_ids=tuple(r.message_id for r in due if r.message_id is not None),
        call_ids=tuple(r.call_id for r in due if r.call_id is not None),
        recording_links=sum(1 for r in due if r.recording_url or r.recording_sid),
        recordings=tuple(
            r.recording_sid for r in due if r.recording_sid and retention.delete_recordings
        ),
        never_acknowledged=tuple(
            r.message_id for r in due if r.message_id is not None and r.status in NOT_ACKNOWLEDGED
        ),
    )
