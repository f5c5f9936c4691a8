"""The dispatcher's loop must not stop: a module that fails, a cycle that fails, or a log handler
that fails leaves the next cycle to run. And it looks again at once only when work is left."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from app.clients.flows import FlowStore
from app.clients.models import Client
from app.db import make_database
from app.dispatch.dispatcher import Dispatcher, Module, module_due
from app.dispatch.links import Links
from app.observability import REGISTRY
from tests.clock import FakeClock
from tests.dispatch.conftest import WatchedWaker


class Failing:
    name = "failing"
    every = dt.timedelta(0)
    batch = 1

    def __init__(self) -> None:
        self.runs = 0

    def run(self, now: dt.datetime) -> int:
        self.runs += 1
        raise RuntimeError("the database went away")


class Counting:
    """A module that stops the loop after `cycles` runs."""

    name = "counting"
    every = dt.timedelta(0)
    batch = 1

    def __init__(self, stop: threading.Event, cycles: int) -> None:
        self.stop, self.cycles, self.runs = stop, cycles, 0

    def run(self, now: dt.datetime) -> int:
        self.runs += 1
        if self.runs == self.cycles:
            self.stop.set()
        return 0


@pytest.fixture
def dispatcher(database_url: str, clock: FakeClock) -> Iterator[Dispatcher]:
    """A dispatcher that never waits between cycles; tests give it their own modules."""
    links = Links("https://nightdesk.test", "secret", clock)
    database = make_database(database_url)
    yield Dispatcher(database, FlowStore(), {}, links, clock, poll=0)
    database.close()


@pytest.fixture
def broken_log_handler() -> Iterator[None]:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("the log shipper is down")

    logger = logging.getLogger("nightdesk.dispatch")
    handler = Broken()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def modules(*chosen: Module) -> list[Module]:
    return list(chosen)


def test_a_failing_module_is_logged_and_the_next_module_still_runs(
    dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    failing, counting = Failing(), Counting(threading.Event(), cycles=99)
    dispatcher.modules = modules(failing, counting)

    assert dispatcher.run_once() == 0

    assert counting.runs == 1
    (record,) = [r for r in caplog.records if r.getMessage() == "dispatch_module_failed"]
    assert record.__dict__["dispatch_module"] == "failing"
    assert record.exc_info is not None


def test_the_loop_keeps_going_while_a_module_fails_and_logging_fails_too(
    dispatcher: Dispatcher, broken_log_handler: None
) -> None:
    stop = threading.Event()
    failing, counting = Failing(), Counting(stop, cycles=3)
    dispatcher.modules = modules(failing, counting)

    dispatcher.run_forever(stop)

    assert (failing.runs, counting.runs) == (3, 3)


def test_a_cycle_that_fails_outright_does_not_end_the_loop(
    dispatcher: Dispatcher, broken_log_handler: None
) -> None:
    stop = threading.Event()
    counting = Counting(stop, cycles=2)
    dispatcher.modules = modules(counting)
    real_cycle, failures = dispatcher.cycle, [RuntimeError("a bug in the dispatcher")]

    def cycle_failing_first() -> int:
        if failures:
            raise failures.pop()
        return real_cycle()

    dispatcher.cycle = cycle_failing_first  # type: ignore[method-assign]
    dispatcher.run_forever(stop)

    assert counting.runs == 2


def test_each_cycle_is_noted_for_a_watchdog(dispatcher: Dispatcher, clock: FakeClock) -> None:
    dispatcher.modules = modules(Failing())
    assert dispatcher.last_cycle_at is None

    dispatcher.run_once()
    later = clock.advance(minutes=5)
    dispatcher.run_once()

    assert dispatcher.last_cycle_at == later
    metric = REGISTRY.get_sample_value("nightdesk_dispatcher_last_cycle_timestamp_seconds")
    assert metric == later.timestamp()


class Hourly:
    name = "hourly"
    every = dt.timedelta(hours=1)
    batch = 1

    def __init__(self) -> None:
        self.runs: list[dt.datetime] = []

    def run(self, now: dt.datetime) -> int:
        self.runs.append(now)
        return 0


def test_a_module_runs_at_most_once_in_its_interval_however_often_the_dispatcher_cycles(
    dispatcher: Dispatcher, clock: FakeClock
) -> None:
    hourly, every_cycle = Hourly(), Counting(threading.Event(), cycles=99)
    dispatcher.modules = modules(hourly, every_cycle)
    first = clock()

    dispatcher.run_once()
    clock.advance(minutes=59)
    dispatcher.run_once()
    later = clock.advance(minutes=1)
    dispatcher.run_once()

    assert hourly.runs == [first, later]
    assert every_cycle.runs == 3


def test_when_a_module_is_due() -> None:
    hour, t0 = dt.timedelta(hours=1), dt.datetime(2026, 12, 24, 22, 0, tzinfo=dt.UTC)
    assert module_due(hour, None, t0), "never ran: due"
    assert not module_due(hour, t0, t0 + hour - dt.timedelta(seconds=1))
    assert module_due(hour, t0, t0 + hour)
    assert module_due(hour, t0, t0 - dt.timedelta(minutes=1)), "a clock set back runs it"
    assert module_due(dt.timedelta(0), t0, t0), "zero: every cycle"


@pytest.mark.usefixtures("demo_clients")
def test_the_dispatcher_parses_every_clients_flow_before_its_first_cycle(
    dispatcher: Dispatcher,
) -> None:
    """Off the event loop: a flow first parsed inside a webhook's unit of work holds up every
    caller while it parses (seconds, for a thousand clients' first summaries)."""
    stop = threading.Event()
    seen_before_first_cycle: list[int] = []

    class Looking:
        name, every, batch = "looking", dt.timedelta(0), 1

        def run(self, now: dt.datetime) -> int:
            seen_before_first_cycle.append(len(dispatcher.flows.parsed()))
            stop.set()
            return 0

    dispatcher.modules = modules(Looking())
    dispatcher.run_forever(stop)
    clients = dispatcher.database.run_blocking(
        lambda session: session.scalar(select(func.count()).select_from(Client))
    )
    assert clients
    assert seen_before_first_cycle == [clients]


class Backlog:
    """A module with `due` rows waiting, which takes at most a batch of them a run."""

    name, every, batch = "backlog", dt.timedelta(0), 50

    def __init__(self, due: int) -> None:
        self.due, self.runs = due, 0

    def run(self, now: dt.datetime) -> int:
        self.runs += 1
        taken = min(self.due, self.batch)
        self.due -= taken
        return taken


def test_the_loop_looks_again_at_once_while_batches_come_full_then_waits_to_be_woken(
    dispatcher: Dispatcher,
) -> None:
    """120 due: batches of 50, 50 and 20, then a wait. Looking again after the 20 would cost a
    busy night a claim per message, finding nothing; a commit that queues work wakes it."""
    backlog, waker, stop = Backlog(due=120), WatchedWaker(), threading.Event()
    dispatcher.modules, dispatcher.waker, dispatcher.poll = modules(backlog), waker, 60
    loop = threading.Thread(target=dispatcher.run_forever, args=(stop,))
    loop.start()
    try:
        assert waker.waiting.wait(timeout=10)
        assert (backlog.runs, backlog.due) == (3, 0)

        waker.waiting.clear()
        backlog.due = 7
        waker.wake()  # what a commit that queued work does
        assert waker.waiting.wait(timeout=10)
        assert (backlog.runs, backlog.due) == (4, 0)
    finally:
        stop.set()
        waker.wake()
        loop.join(timeout=10)
