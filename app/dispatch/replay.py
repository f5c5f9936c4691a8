"""Replaying the spool: Twilio callbacks the database refused, applied once it answers again.

Oldest first, each in a unit of work of its own, through the same function the route ran
(`app.telephony.spool`). A file is deleted only after its replay committed; a crash in
between replays it again, which changes nothing (the callbacks are idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import Gauge

from app.db import Database, refused_by_database
from app.observability import REGISTRY
from app.telephony.spool import Replay, Spool, SpooledRequest

log = logging.getLogger("nightdesk.dispatch")

BATCH = 100
TRIES = 5  # replays of one file that fail for another reason than the database, then set aside
SPOOLED = Gauge(
    "nightdesk_spooled_callbacks", "Twilio callbacks waiting in the spool for the database",
    registry=REGISTRY,
)  # fmt: skip


@dataclass
class ReplaySpool:
    """A dispatcher module: replays what the spool holds while the database takes it."""

    database: Database
    spool: Spool
    replays: Mapping[str, Replay]
    name: str = "spool"
    every: dt.timedelta = dt.timedelta(0)
    batch: int = BATCH
    _failures: dict[str, int] = field(default_factory=dict, repr=False)

    def run(self, now: dt.datetime) -> int:
        replayed = 0
        waiting = self.spool.oldest(self.batch)
        if not waiting:  # the usual case: one look at an empty folder
            SPOOLED.set(0)
            return 0
        for callback in waiting:
            replay = self.replays.get(callback.path)
            if replay is None:
                log.error("spool_unknown_path", extra={"file": callback.name})
                self.spool.set_aside(callback)
                continue
            try:
                work = replay(callback)
                if work is not None:
                    self.database.run_blocking(work)
            except Exception as error:
                if refused_by_database(error):
                    log.info("spool_waits_for_database", extra={"file": callback.name})
                    break  # still down: try again next cycle, in order
                self._failed(callback, error)
                continue
            self.spool.done(callback)
            self._failures.pop(callback.name, None)
            replayed += 1
            log.info("spool_replayed", extra={"path": callback.path, "file": callback.name})
        SPOOLED.set(self.spool.count())
        return replayed

    def _failed(self, callback: SpooledRequest, error: Exception) -> None:
        """A replay that failed by itself: a race with another replayer (worth another try),
        or a request no replay will ever take (set aside after a few tries, and said)."""
        tries = self._failures.get(callback.name, 0) + 1
        self._failures[callback.name] = tries
        log.warning(
            "spool_replay_failed",
            extra={"file": callback.name, "tries": tries, "error": type(error).__name__},
        )
        if tries >= TRIES:
            log.error("spool_set_aside", extra={"file": callback.name, "path": callback.path})
            self.spool.set_aside(callback)
            self._failures.pop(callback.name, None)
