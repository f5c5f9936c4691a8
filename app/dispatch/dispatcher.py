"""The dispatcher: a short list of modules run whenever woken, and at least once a second.

- `FireEscalations` moves each unacknowledged message to its policy's next step when it is due.
- `ReescalateOverdueCallbacks` escalates a message again when its promised call back is overdue.
- `SendDeliveries` claims due deliveries under a lease, sends them through the senders, and
  records the provider's id or the error (retry with backoff, or fail over).
- `SendWebhooks` (app/webhooks) posts events to clients' own systems, signed, with retries.
- `SendSummaries` (app/summaries, added by `add_summaries`) queues each client's morning summary.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of `nightdesk worker` processes
can run side by side; SQLite has one writer at a time, which makes the one claimer safe there.
A worker killed mid-send leaves its rows `sending` with a lease that runs out; whoever claims them
next first asks Twilio whether the earlier attempt went through, so nobody is notified twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import psycopg
from prometheus_client import Gauge, Histogram
from sqlalchemy import event, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import FlowStore
from app.db import Database
from app.dispatch import outbox
from app.dispatch.callbacks import ReescalateOverdueCallbacks
from app.dispatch.escalations import FireEscalations
from app.dispatch.links import Links
from app.dispatch.senders import (
    Sender,
    make_senders,
)
from app.dispatch.sending import SendDeliveries
from app.flows.schema import Channel
from app.observability import REGISTRY, log_safely
from app.settings import Settings
from app.timeutil import Clock
from app.webhooks.sending import SendWebhooks, make_http

log = logging.getLogger("nightdesk.dispatch")

DEV_PUBLIC_URL = "http://127.0.0.1:8000"  # where callbacks go when NIGHTDESK_PUBLIC_URL is unset
MODULE_SECONDS = Histogram(
    "nightdesk_dispatch_module_seconds", "Time per dispatcher module run", ["module"],
    registry=REGISTRY,
)  # fmt: skip
LAST_CYCLE = Gauge(
    "nightdesk_dispatcher_last_cycle_timestamp_seconds",
    "When the dispatcher last finished a cycle (Unix time): alert when it falls behind",
    registry=REGISTRY,
)


class Waker:
    """Lets a commit that queued work wake the dispatcher at once instead of at its next poll."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


class Module(Protocol):
    name: str

    def run(self, now: dt.datetime) -> int: ...


@dataclass
class Dispatcher:
    """Runs its modules under one clock; `run_once` is what tests call, `run_forever` the loop."""

    database: Database
    flows: FlowStore
    senders: Mapping[Channel, Sender]
    links: Links
    clock: Clock
    waker: Waker = field(default_factory=Waker)
    poll: float = 1.0  # seconds between looks when nothing wakes it
    modules: list[Module] = field(init=False)
    last_cycle_at: dt.datetime | None = field(default=None, init=False)  # for a watchdog

    def __post_init__(self) -> None:
        self.modules = [
            FireEscalations(self.database, self.flows),
            ReescalateOverdueCallbacks(self.database, self.flows),
            SendDeliveries(self.database, self.flows, self.senders, self.links),
        ]

    def add(self, module: Module) -> None:
        """A module from a package above this one (summaries). It runs before sending, so the
        emails it queues go out in the same cycle."""
        sending = next(i for i, m in enumerate(self.modules) if isinstance(m, SendDeliveries))
        self.modules.insert(sending, module)

    def run_once(self) -> int:
        """Do everything that is due now; returns how many rows were worked on."""
        done = 0
        for module in self.modules:
            started = time.perf_counter()
            try:
                done += module.run(self.clock())
            except Exception:  # one module's failure must not stop the others
                log_safely(
                    log,
                    logging.ERROR,
                    "dispatch_module_failed",
                    exc_info=True,
                    dispatch_module=module.name,
                )
            finally:
                MODULE_SECONDS.labels(module=module.name).observe(time.perf_counter() - started)
        self.last_cycle_at = self.clock()
        LAST_CYCLE.set(self.last_cycle_at.timestamp())
        return done

    def run_forever(self, stop: threading.Event) -> None:
        """Run cycles until `stop` is set. Nothing a cycle does, or fails to log, ends the loop."""
        log_safely(log, logging.INFO, "dispatcher_started")
        while not stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log_safely(log, logging.ERROR, "dispatch_cycle_failed", exc_info=True)
                done = 0
            if done == 0:
                self.waker.wait(self.poll)
        log_safely(log, logging.INFO, "dispatcher_stopped")


def wake_on_commit(sessions: sessionmaker[Session], waker: Waker) -> None:
    """Wake the in-process dispatcher when a transaction that queued work commits."""

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        if session.info.pop("wake_dispatcher", False):
            waker.wake()

    @event.listens_for(sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop("wake_dispatcher", None)


def make_dispatcher(
    settings: Settings, database: Database, flows: FlowStore, clock: Clock
) -> Dispatcher:
    """The dispatcher as `nightdesk serve` and `nightdesk worker` run it."""
    base = settings.public_url.rstrip("/") or DEV_PUBLIC_URL
    links = Links(base, settings.secret_key, clock, settings.ack_link_days)
    dispatcher = Dispatcher(database, flows, make_senders(settings), links, clock)
    local_ok = settings.webhooks_may_reach_this_machine
    dispatcher.add(SendWebhooks(database, flows, make_http(), outbox.queue_notice, local_ok))
    wake_on_commit(database.sessions, dispatcher.waker)
    return dispatcher


def listen_for_work(database_url: str, waker: Waker, stop: threading.Event) -> None:
    """PostgreSQL LISTEN: a commit that queued work in any process wakes this dispatcher.

    Runs until `stop` is set; reconnects after a lost connection (polling covers the gap).
    """
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    while not stop.is_set():
        try:
            with psycopg.connect(dsn, autocommit=True) as connection:
                connection.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                while not stop.is_set():
                    for _notice in connection.notifies(timeout=1.0):
                        waker.wake()
        except psycopg.Error:
            log.warning("dispatch_listen_lost", exc_info=True)
            stop.wait(1.0)


def start_in_background(dispatcher: Dispatcher, database_url: str) -> Callable[[], None]:
    """Run the dispatcher on daemon threads (inside `nightdesk serve`); returns a stop function."""
    stop = threading.Event()
    threads = [threading.Thread(target=dispatcher.run_forever, args=(stop,), name="dispatcher")]
    if database_url.startswith("postgresql"):
        threads.append(
            threading.Thread(
                target=listen_for_work,
                args=(database_url, dispatcher.waker, stop),
                name="dispatch-listen",
            )
        )
    for thread in threads:
        thread.daemon = True
        thread.start()

    def stop_it() -> None:
        stop.set()
        dispatcher.waker.wake()
        for thread in threads:
            thread.join(timeout=10)

    return stop_it
