"""The dispatcher's summaries module: each cycle, write the summaries that have come due."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from app.clients.flows import FlowStore
from app.db import Database
from app.dispatch.dispatcher import ALL_DUE, Dispatcher
from app.summaries.service import Outcome, Owed, owed_summaries, queue_summary

log = logging.getLogger("nightdesk.summaries")

# A message saved a moment before a summary's time may commit a moment after it; looking this
# long after the time, the summary finds it. (A webhook's work has 15 s at most: Twilio's limit.)
SAVES_IN_FLIGHT = dt.timedelta(seconds=30)


@dataclass
class SendSummaries:
    """Queues each client's summary when it is due; the deliveries module sends the emails."""

    database: Database
    flows: FlowStore
    portal: str  # the public URL the portal links start with
    name: str = "summaries"
    every: dt.timedelta = dt.timedelta(seconds=30)  # a summary's time is to the minute
    batch: int = ALL_DUE

    def run(self, now: dt.datetime) -> int:
        owed = self.database.run_blocking(
            lambda session: owed_summaries(session, self.flows, now - SAVES_IN_FLIGHT)
        )
        written = 0
        for summary in owed:  # a unit each: one client's failure leaves the others' alone
            try:
                outcome = self.database.run_blocking(partial(self._queue, summary=summary, now=now))
            except Exception:
                log.exception("summary_failed", extra={"client": summary.client})
                continue
            written += outcome.status != "taken"
        return written

    def _queue(self, session: Session, *, summary: Owed, now: dt.datetime) -> Outcome:
        return queue_summary(session, self.flows, summary, self.portal, now)


def add_summaries(dispatcher: Dispatcher) -> Dispatcher:
    """The dispatcher, writing summaries too (`nightdesk serve` and `nightdesk worker`)."""
    dispatcher.add(SendSummaries(dispatcher.database, dispatcher.flows, dispatcher.links.base))
    return dispatcher
