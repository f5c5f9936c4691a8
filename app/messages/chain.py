"""A message's timeline as a hash chain: each event carries the SHA-256 of its canonical content
and of the event before it, so a record of who was told what, and when, shows any later edit.

Pure: plain values in, verdicts out. The canonical form is fixed for good (version "v1" is part
of what is hashed): changing it would break every chain already written.

What it proves, and what it doesn't: an event edited, removed or reordered in the database no
longer matches its hash or its successor's. Someone who can write to the database can also
recompute every hash after an edit; against that, the client keeps a copy of the head hash
(`GET /api/v1/messages/{id}/verify` hands it out) and compares it later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERSION = "v1"


@dataclass(frozen=True)
class ChainedEvent:
    """One timeline event as stored: what is hashed, and the hashes stored beside it."""

    id: int
    message_id: int
    seq: int
    at: dt.datetime
    kind: str
    detail: Mapping[str, Any]
    prev_hash: str | None
    hash: str


def utc_instant(at: dt.datetime) -> dt.datetime:
    """The instant as stored and hashed: aware, UTC (a naive one is UTC, as SQLite returns it)."""
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def canonical(
    message_id: int,
    seq: int,
    at: dt.datetime,
    kind: str,
    detail: Mapping[str, Any],
    prev_hash: str | None,
) -> bytes:
    """The bytes hashed for one event: sorted-key, whitespace-free JSON (so PostgreSQL's JSONB
    reordering keys changes nothing), the instant in UTC to the microsecond."""
    content = {
        "v": VERSION,
        "message": message_id,
        "seq": seq,
        "at": utc_instant(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "kind": kind,
        "detail": detail,
        "prev": prev_hash,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()


def event_hash(
    message_id: int,
    seq: int,
    at: dt.datetime,
    kind: str,
    detail: Mapping[str, Any],
    prev_hash: str | None,
) -> str:
    """The SHA-256 (hex) an event carries: of its content and the previous event's hash."""
    return hashlib.sha256(canonical(message_id, seq, at, kind, detail, prev_hash)).hexdigest()


@dataclass(frozen=True)
class Intact:
    """Every event matches, and the chain ends where the message says it does."""

    events: int
    head: str | None


@dataclass(frozen=True)
class Broken:
    """The first event that does not match, and why. `event_id` is None when what is wrong is
    that events are missing at the end."""

    seq: int
    event_id: int | None
    reason: str


def content_digest(caller: str, answers: Mapping[str, Any], transcription: str | None) -> str:
    """The SHA-256 of what the caller left: stamped (as `content`) on the event that took the
    message and on each transcription's event, so the message's own row is covered too."""
    content = {"v": VERSION, "caller": caller, "answers": answers, "transcription": transcription}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_content(
    events: Sequence[ChainedEvent],
    caller: str,
    answers: Mapping[str, Any],
    transcription: str | None,
) -> Broken | None:
    """Whether the message's content is what its latest `content` stamp says (None: it is,
    or no event stamped it: a message taken before stamps existed)."""
    stamped = [event for event in events if "content" in event.detail]
    if not stamped:
        return None
    last = stamped[-1]
    if last.detail["content"] == content_digest(caller, answers, transcription):
        return None
    name = f"event {last.seq} (id {last.id}, {last.kind})"
    return Broken(
        last.seq, last.id, f"the message's caller, answers or transcription differ from {name}"
    )


def verify_chain(events: Iterable[ChainedEvent], length: int, head: str | None) -> Intact | Broken:
    """Check a message's events (in `seq` order) against each other and against the length and
    head hash recorded on the message."""
    previous: str | None = None
    count = 0
    for expected, event in enumerate(events, start=1):
        count = expected
        name = f"event {event.seq} (id {event.id}, {event.kind})"
        if event.seq != expected:
            missing = f"event {expected}" if event.seq == expected + 1 else "events before it"
            return Broken(event.seq, event.id, f"{missing} is missing before {name}")
        if event.prev_hash != previous:
            return Broken(event.seq, event.id, f"{name} does not follow the event before it")
        recomputed = event_hash(
            event.message_id, event.seq, event.at, event.kind, event.detail, event.prev_hash
        )
        if recomputed != event.hash:
            return Broken(event.seq, event.id, f"{name} was altered after it was written")
        previous = event.hash
    if count < length:
        return Broken(count + 1, None, f"event {count + 1} of {length} is missing")
    if count > length or previous != head:
        return Broken(count, None, "the timeline does not end where the message says it does")
    return Intact(count, previous)
