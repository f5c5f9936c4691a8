"""Service levels in /metrics: today's and this week's figures (each client's own day and
week), per client or, with NIGHTDESK_METRICS_CLIENT_LABELS=false, pooled under client="all".

Labels stay few: client × window (day, week) × measure (acknowledge, call_back, pa_answer) ×
quantile (0.5, 0.9), and urgency for message counts; never a message, a caller or a date. The
figures are read when Prometheus scrapes, at most once a minute (`FRESH`); a failure to read
them leaves them out of that scrape and is logged, never raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from app.db import Database
from app.levels.figures import URGENCIES, By, Samples, Timing, samples_by_period, since
from app.levels.queries import every_clients_rows, reported_clients
from app.observability import REGISTRY, client_label, log_safely
from app.timeutil import Clock

log = logging.getLogger("nightdesk.levels")
FRESH = 60.0  # seconds a reading is served before the database is asked again
WINDOWS: tuple[By, ...] = ("day", "week")


def pooled_by_label(session: Session, now: dt.datetime) -> dict[tuple[str, By], Samples]:
    """(client label, window) → the current day's or week's samples, pooled per label."""
    clients = reported_clients(session)
    # From the earliest of their weeks' starts: a client's own day and week (in its own zone)
    # leave out what is older for it. This week's rows hold today's too.
    earliest = min((since(now, ZoneInfo(c.timezone), "week", 1) for c in clients), default=now)
    pooled: dict[tuple[str, By], Samples] = {}
    for rows in every_clients_rows(session, clients, earliest):
        zone = ZoneInfo(rows.timezone)
        for window in WINDOWS:
            found = samples_by_period(rows.calls, rows.messages, rows.answers, zone, now,
                                      window, 1)  # fmt: skip
            (samples,) = found.values()
            key = (client_label(rows.slug), window)
            pooled[key] = pooled[key].pooled(samples) if key in pooled else samples
    return pooled


def families(pooled: dict[tuple[str, By], Samples]) -> list[GaugeMetricFamily]:
    """The gauges for one reading."""
    calls = GaugeMetricFamily(
        "nightdesk_service_calls", "Calls taken in the client's current day or week",
        labels=["client", "window"],
    )  # fmt: skip
    abandoned = GaugeMetricFamily(
        "nightdesk_service_abandoned_calls",
        "Calls the caller hung up on before leaving a message or reaching a person",
        labels=["client", "window"],
    )
    messages = GaugeMetricFamily(
        "nightdesk_service_messages", "Messages taken, by urgency",
        labels=["client", "window", "urgency"],
    )  # fmt: skip
    seconds = GaugeMetricFamily(
        "nightdesk_service_seconds",
        "Time to acknowledge, to call back, and for a PA to answer (p50, p90)",
        labels=["client", "window", "measure", "quantile"],
    )
    for (client, window), samples in sorted(pooled.items()):
        calls.add_metric([client, window], samples.calls)
        abandoned.add_metric([client, window], samples.abandoned)
        for urgency in URGENCIES:
            messages.add_metric([client, window, urgency], samples.messages.get(urgency, 0))
        for measure, values in (
            ("acknowledge", samples.to_acknowledge),
            ("call_back", samples.to_call_back),
            ("pa_answer", samples.to_answer),
        ):
            timing = Timing.of(values)
            for quantile, value in (("0.5", timing.p50_seconds), ("0.9", timing.p90_seconds)):
                if value is not None:
                    seconds.add_metric([client, window, measure, quantile], value)
    return [calls, abandoned, messages, seconds]


@dataclass(eq=False)  # registries keep collectors in a dict: hashed by identity
class ServiceLevelsCollector(Collector):
    """Reads the figures when scraped (through the app's database), a minute apart at most."""

    database: Database | None = None
    clock: Clock | None = None
    _read_at: float = -FRESH
    _last: list[GaugeMetricFamily] | None = None

    def attach(self, database: Database, clock: Clock) -> None:
        """The app whose database the figures come from (the newest app, in tests)."""
        self.database, self.clock = database, clock
        self.forget()

    def forget(self) -> None:
        """Read the figures again at the next scrape."""
        self._last = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # registering must not read the database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.database is None or self.clock is None:
            return
        if self._last is None or time.monotonic() - self._read_at >= FRESH:
            database, now = self.database, self.clock()
            try:
                pooled = database.run_blocking(lambda s: pooled_by_label(s, now))
            except Exception:
                log_safely(log, logging.WARNING, "service_levels_unreadable", exc_info=True)
                return
            self._last, self._read_at = families(pooled), time.monotonic()
        yield from self._last


SERVICE_LEVELS = ServiceLevelsCollector()
REGISTRY.register(SERVICE_LEVELS)
