"""A durable local spool for the Twilio callbacks the database refused, so none is lost.

Twilio sends recording, transcription and status callbacks once: it does not try again after
a 500 (its connection overrides retry for a few seconds at most). When the database refuses
one (PostgreSQL down, a connection lost, SQLite's lock), the route writes the request to a
file of its own here and answers Twilio as usual; the dispatcher's `ReplaySpool` replays the
files, oldest first, through the very same unit of work once the database answers again, and
deletes each one only after its replay committed. Replays are idempotent, as Twilio's own
repeats are: recordings are keyed by their sid, a call has one message, a delivery's status
settles once. A crash between the commit and the delete replays a
file twice, harmlessly.

Why a spool rather than asking Twilio afterwards (reconciliation through the REST API, for
calls whose recording or status never arrived): a spool keeps exactly what Twilio said, for
every kind of callback alike (transcriptions and SMS statuses included), costs nothing until
the database fails, and needs neither Twilio nor a list of calls to check, which the fallback
voicemail's calls never reached the database to be on. Its limit: it lives on the machine
that took the request, so that machine must come back (with its disk) for the files to be
replayed; reconciliation would not need that, and remains possible on top of this.

Each file is written to a temporary name, flushed and fsync'd, then renamed into place (and
the folder fsync'd), so a file that is there is whole. Files hold callers' numbers: they are
readable by the service's user only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.db import Database, refused_by_database
from app.telephony.signature import TwilioForm

log = logging.getLogger("nightdesk.spool")

SET_ASIDE = "set-aside"  # files that could not be replayed, for a person to look at


@dataclass(frozen=True)
class SpooledRequest:
    """One signed Twilio callback, as received: enough to run its unit of work again."""

    path: str  # the route's path, e.g. /twilio/voice/recording
    query: str  # the raw query string (the fallback voicemail's callbacks carry the caller)
    form: dict[str, str]
    received_at: dt.datetime  # aware UTC; the replay runs as of this moment
    name: str = ""  # the file's name, once in the spool


Replay = Callable[[SpooledRequest], Callable[[Session], None] | None]
"""Turns a callback into its unit of work: the route runs it at once, the replayer later.
None: the callback changes nothing (a text's progress), so it needs no unit, nor keeping."""


class Spool:
    """A folder of spooled requests, one JSON file each, named so that sorting is by age."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sequence = itertools.count()

    def keep(self, request: SpooledRequest) -> SpooledRequest:
        """Write the request durably; returns it with its file name."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = request.received_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{os.getpid()}-{next(self._sequence):06d}-{secrets.token_hex(3)}.json"
        content = json.dumps(
            {
                "path": request.path,
                "query": request.query,
                "form": request.form,
                "received_at": request.received_at.isoformat(),
            }
        ).encode()
        temporary = self.folder / f".{name}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, content)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.rename(temporary, self.folder / name)
        _fsync_folder(self.folder)  # the rename itself survives a crash
        return replace(request, name=name)

    def oldest(self, limit: int) -> list[SpooledRequest]:
        """Up to `limit` spooled requests, oldest first; an unreadable file is set aside."""
        try:
            names = sorted(
                entry.name
                for entry in os.scandir(self.folder)
                if entry.is_file() and entry.name.endswith(".json") and entry.name[0] != "."
            )
        except FileNotFoundError:
            return []
        requests = []
        for name in names[:limit]:
            try:
                requests.append(self._read(name))
            except FileNotFoundError:  # another process replayed it meanwhile
                continue
            except (ValueError, KeyError, TypeError):
                log.error("spool_file_unreadable", extra={"file": name})
                self._move_aside(name)
        return requests

    def done(self, request: SpooledRequest) -> None:
        """Forget a request whose replay committed (another process may have done it first)."""
        (self.folder / request.name).unlink(missing_ok=True)

    def set_aside(self, request: SpooledRequest) -> None:
        """Move a request that cannot be replayed out of the way, for a person to look at."""
        self._move_aside(request.name)

    def count(self) -> int:
        try:
            return sum(1 for entry in os.scandir(self.folder) if entry.name.endswith(".json"))
        except FileNotFoundError:
            return 0

    def _read(self, name: str) -> SpooledRequest:
        data = json.loads((self.folder / name).read_bytes())
        received_at = dt.datetime.fromisoformat(data["received_at"])
        if received_at.tzinfo is None:
            raise ValueError("received_at has no time zone")
        form = {str(key): str(value) for key, value in dict(data["form"]).items()}
        return SpooledRequest(str(data["path"]), str(data["query"]), form, received_at, name)

    def _move_aside(self, name: str) -> None:
        aside = self.folder / SET_ASIDE
        aside.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # another process replayed it meanwhile
            os.rename(self.folder / name, aside / name)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class Callback:
    """A signed Twilio callback as its route received it, and where its work goes: to the
    database, or to the spool when the database refuses it."""

    received: SpooledRequest
    database: Database
    spool: Spool

    async def apply(self, replay: Replay) -> None:
        """Run the callback's unit of work now; if the database refuses it, keep the callback
        in the spool for the replayer, so Twilio still gets its 2xx and nothing is lost.

        A callback that is malformed fails in `replay` before anything is kept (400), and work
        that fails for any other reason than the database raises as before: only what may
        succeed later is worth keeping.
        """
        work = replay(self.received)
        if work is None:
            return
        try:
            await self.database.run(work)
        except Exception as error:
            if not refused_by_database(error):
                raise
            kept = await asyncio.to_thread(self.spool.keep, self.received)
            log.warning(
                "callback_spooled",
                extra={"path": kept.path, "file": kept.name, "error": type(error).__name__},
            )


async def signed_callback(request: Request, form: TwilioForm) -> Callback:
    """A callback route's one dependency (each costs a webhook more than its own SQL does)."""
    state = request.app.state
    query = request.scope["query_string"].decode("latin-1")
    received = SpooledRequest(request.scope["path"], query, dict(form), state.clock())
    return Callback(received, state.database, state.spool)


TwilioCallback = Annotated[Callback, Depends(signed_callback)]
"""A signed Twilio callback (403 when its signature fails), ready to apply or spool."""
