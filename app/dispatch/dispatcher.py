"""The dispatcher: a short list of modules run whenever woken, and at least once a second.

- `FireEscalations` moves each unacknowledged message to its policy's next step when it is due.
- `ReescalateOverdueCallbacks` escalates a message again when its promised call back is overdue.
- `SendDeliveries` claims due deliveries under a lease, sends them through the senders, and
  records the provider's id or the error (retry with backoff, or fail over).
- `SendWebhooks` (app/webhooks) posts events to clients' own systems, signed, with retries.
- `SendSummaries` (app/summaries, added by `add_summaries`) queues each client's morning summary.
- `ReplaySpool` (inside `nightdesk serve`) replays the Twilio callbacks the database refused
  while it was down, kept in the process's spool (`app.telephony.spool`). An API-only replica
  (`NIGHTDESK_RUN_DISPATCHER=false`) still runs this one module: nobody else sees its spool.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of `nightdesk worker` processes
can run side by side; SQLite has one writer at a time, which makes the one claimer safe there.
A worker killed mid-send leaves its rows `sending` with a lease that runs out; whoever claims them
next first asks Twilio whether the earlier attempt went through, so nobody is notified twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.clients.flows import FlowStore
from app.db import Database, listen
from app.dispatch import outbox
from app.dispatch.callbacks import ReescalateOverdueCallbacks
from app.dispatch.escalations import FireEscalations
from app.dispatch.links import Links
from app.dispatch.replay import ReplaySpool
from app.dispatch.senders import (
    Sender,
    make_senders,
)
from app.dispatch.sending import LEASE, SendDeliveries, lease_for
from app.flows.schema import Channel
from app.observability import REGISTRY, log_safely
from app.settings import Settings
from app.telephony.spool import Replay, Spool
from app.timeutil import Clock
from app.webhooks.sending import SendWebhooks, make_http

log = logging.getLogger("nightdesk.dispatch")

STALLED_AFTER = dt.timedelta(minutes=5)  # no cycle for this long: `/livez` answers 503

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
    """One kind of work. `every`: at most once in this long (zero: every cycle, for work that
    must not wait, such as sending); the dispatcher cycles whenever a commit wakes it, and most
    modules look for work that cannot be due more often than every few seconds or minutes.
    `batch`: the most rows one run takes on. A run that took that many may have left more due,
    so the dispatcher cycles again at once; otherwise it waits to be woken."""

    name: str
    every: dt.timedelta
    batch: int

    def run(self, now: dt.datetime) -> int: ...


EVERY_CYCLE = dt.timedelta(0)
ALL_DUE = sys.maxsize  # the `batch` of a module that does all that is due in one run


def module_due(every: dt.timedelta, last_run: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a module that last ran at `last_run` runs in a cycle at `now` (a clock that
    went back, as a test's may, runs it)."""
    return last_run is None or not last_run <= now < last_run + every


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
    spool: ReplaySpool | None = None  # the web process's spool, replayed first each cycle
    lease: dt.timedelta = LEASE  # how long a claim holds its deliveries
    notify: bool = True  # False: only replay the spool (an API-only replica)
    modules: list[Module] = field(init=False)
    started_at: dt.datetime | None = field(default=None, init=False)
    last_cycle_at: dt.datetime | None = field(default=None, init=False)  # for a watchdog
    more_due: bool = field(default=False, init=False)  # the last cycle left work due now
    sending: SendDeliveries = field(init=False)
    last_runs: dict[str, dt.datetime] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.sending = SendDeliveries(
            self.database, self.flows, self.senders, self.links, self.lease,
            room_freed=lambda: self.waker.wake(),
        )  # fmt: skip
        notifying: list[Module] = [
            FireEscalations(self.database, self.flows),
            ReescalateOverdueCallbacks(self.database, self.flows),
            self.sending,
        ]
        self.modules = [
            *([self.spool] if self.spool is not None else []),
            *(notifying if self.notify else []),
        ]

    def add(self, module: Module) -> None:
        """A module from a package above this one (summaries). It runs before sending, so the
        emails it queues go out in the same cycle. An API-only replica runs none of them."""
        if not self.notify:
            return
        sending = next(i for i, m in enumerate(self.modules) if isinstance(m, SendDeliveries))
        self.modules.insert(sending, module)

    def run_once(self) -> int:
        """Do everything that is due now, and wait until the sends it started are recorded:
        what tests and commands call. Returns how many rows were worked on."""
        done = self.cycle()
        self.sending.wait_until(in_flight=0)
        return done

    def cycle(self) -> int:
        """One pass over the modules; the sends they start go on in the background. Notes in
        `more_due` whether a module took a full batch (and so may have left more)."""
        done, self.more_due = 0, False
        for module in self.modules:
            now = self.clock()
            if not module_due(module.every, self.last_runs.get(module.name), now):
                continue
            self.last_runs[module.name] = now
            started = time.perf_counter()
            try:
                ran = module.run(now)
                done += ran
                self.more_due = self.more_due or ran >= module.batch
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
        self.started_at = self.started_at or self.clock()
        try:
            self.flows.warm(self.database)
        except Exception:  # a cold cache only costs time
            log_safely(log, logging.WARNING, "flows_not_warmed", exc_info=True)
        while not stop.is_set():
            try:
                self.cycle()
            except Exception:
                log_safely(log, logging.ERROR, "dispatch_cycle_failed", exc_info=True)
                self.more_due = False
            # What a cycle queues (an escalation's next step, a retry) wakes it through the
            # commit that queued it; only a full batch leaves work nobody will wake it for.
            # Looking again at once after any work cost a busy night a claim per message.
            if not self.more_due:
                self.waker.wait(self.poll)
        log_safely(log, logging.INFO, "dispatcher_stopped")

    def stalled(self, now: dt.datetime) -> bool:
        """Whether the loop has not finished a cycle for too long (or never ran): see
        `is_stalled`. `/livez` answers 503 then, so a supervisor restarts the process."""
        return is_stalled(self.started_at, self.last_cycle_at, now)


def is_stalled(
    started_at: dt.datetime | None,
    last_cycle_at: dt.datetime | None,
    now: dt.datetime,
    limit: dt.timedelta = STALLED_AFTER,
) -> bool:
    """A dispatcher that never started, or whose last cycle (or start, before its first cycle)
    is more than `limit` ago. A cycle never waits for a send, and each send and each database
    call has its own timeout, so a healthy loop finishes a cycle every second or so even while
    the database or Twilio is down; only a loop stuck inside a cycle, or gone, goes quiet."""
    last = last_cycle_at or started_at
    return last is None or now - last > limit


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
    settings: Settings,
    database: Database,
    flows: FlowStore,
    clock: Clock,
    replays: Mapping[str, Replay] | None = None,
) -> Dispatcher:
    """The dispatcher as `nightdesk serve` (which passes the spool's `replays`, and notifies
    unless NIGHTDESK_RUN_DISPATCHER is false) and `nightdesk worker` run it."""
    base = settings.public_url.rstrip("/") or DEV_PUBLIC_URL
    links = Links(base, settings.secret_key, clock, settings.ack_link_days)
    spool = None
    if replays is not None:
        spool = ReplaySpool(database, Spool(settings.spool_dir), replays)
    notify = replays is None or settings.run_dispatcher
    dispatcher = Dispatcher(
        database, flows, make_senders(settings), links, clock, spool=spool, notify=notify,
        lease=lease_for(settings.twilio_timeout),
    )  # fmt: skip
    local_ok = settings.webhooks_may_reach_this_machine
    dispatcher.add(SendWebhooks(database, flows, make_http(), outbox.queue_notice, local_ok))
    wake_on_commit(database.sessions, dispatcher.waker)
    return dispatcher


def listen_for_work(database_url: str, waker: Waker, stop: threading.Event) -> None:
    """PostgreSQL LISTEN: a commit that queued work in any process wakes this dispatcher
    (and so does each reconnection: what was notified meanwhile is gone; polling covers it)."""
    listen(database_url, outbox.NOTIFY_CHANNEL, stop, lambda _payload: waker.wake())


def keep_running(
    loop: Callable[[threading.Event], None], stop: threading.Event, pause: float = 1.0
) -> None:
    """Run `loop` until `stop` is set, starting it again whenever it ends before that (it
    should not: anything a cycle raises is caught; this is the watchdog's last line)."""
    while not stop.is_set():
        try:
            loop(stop)
        except BaseException:  # on a thread of its own: nothing above it would hear of it
            log_safely(log, logging.CRITICAL, "dispatcher_loop_ended", exc_info=True)
        else:
            if not stop.is_set():
                log_safely(log, logging.CRITICAL, "dispatcher_loop_ended")
        stop.wait(pause)  # not a hot loop if it ends at once every time


def start_in_background(dispatcher: Dispatcher, database_url: str) -> Callable[[], None]:
    """Run the dispatcher on daemon threads (inside `nightdesk serve`); returns a stop function."""
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=keep_running, args=(dispatcher.run_forever, stop), name="dispatcher"
        )
    ]
    if dispatcher.notify and database_url.startswith("postgresql"):
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
        # Sends under way finish (each within its timeout) and are recorded before the
        # database closes; one still stuck is looked up by whoever claims it next.
        dispatcher.sending.wait_until(in_flight=0, timeout=30)

    return stop_it
