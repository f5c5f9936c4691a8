"""The dispatcher's retention module: now and then, purge each client's records that are past
their time, then ask Twilio to delete the recordings owed a deletion."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from twilio.rest import Client as TwilioClient

from app.clients.flows import FlowStore
from app.db import Database
from app.dispatch.dispatcher import ALL_DUE, Dispatcher
from app.records.purge import delete_owed_recordings, purge_client, retaining_clients
from app.settings import Settings
from app.telephony.rest import make_twilio_client

log = logging.getLogger("nightdesk.records")

EVERY = dt.timedelta(hours=1)  # retention counts in days: once an hour is plenty


@dataclass
class PurgeRecords:
    """Purges by age, each client a unit per batch (see `app.records.purge`); a client whose
    purge fails leaves the others' alone, and the next run tries it again."""

    database: Database
    flows: FlowStore
    twilio: Callable[[], TwilioClient]
    every: dt.timedelta = EVERY
    batch: int = ALL_DUE
    name: str = "retention"

    def run(self, now: dt.datetime) -> int:
        done = 0
        clients = self.database.run_blocking(lambda s: retaining_clients(s, self.flows))
        for client in clients:
            try:
                totals = purge_client(self.database, client, now, by="dispatcher")
            except Exception:
                log.exception("purge_failed", extra={"client": client.slug})
                continue
            if totals:
                log.info("records_purged", extra={"client": client.slug, **totals})
                done += totals.get("messages", 0) + totals.get("calls", 0)
        return done + delete_owed_recordings(self.database, self.twilio(), now)


def twilio_for(settings: Settings) -> Callable[[], TwilioClient]:
    """The account's REST client, built once when first needed."""
    made: list[TwilioClient] = []

    def get() -> TwilioClient:
        if not made:
            made.append(
                make_twilio_client(
                    settings.twilio_account_sid,
                    settings.twilio_auth_token,
                    settings.twilio_api_base,
                    timeout=settings.twilio_timeout,
                )
            )
        return made[0]

    return get


def add_retention(dispatcher: Dispatcher, settings: Settings) -> Dispatcher:
    """The dispatcher, purging by each client's retention too (`serve` and `worker`)."""
    dispatcher.add(PurgeRecords(dispatcher.database, dispatcher.flows, twilio_for(settings)))
    return dispatcher
