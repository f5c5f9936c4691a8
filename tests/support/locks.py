"""Two transactions meeting at a PostgreSQL row lock, in a known order, without sleeping.

    with transaction(sessions) as first:
        ...  # takes the row's lock
        second = Racer(sessions, work)  # starts in a thread
        second.wait_until_blocked()  # it now waits for `first` at a lock
    second.result()  # `first` has committed; the second finished after it

`wait_until_someone_waits_for(first, sessions)` does the same for work the test starts some
other way (a dispatcher on its own thread).

A guard that locks the row makes the second wait at its SELECT ... FOR UPDATE and then read what
the first wrote; without it, the second reads the row as it was, and waits only at its UPDATE,
too late. Either way it waits, so the test always knows when to let the first commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction

T = TypeVar("T")


class Racer(Generic[T]):
    """`work` in a transaction of its own on a thread, whose backend we can watch."""

    def __init__(self, sessions: sessionmaker[Session], work: Callable[[Session], T]) -> None:
        self._sessions = sessions
        self._work = work
        self._pid: Future[int] = Future()
        self._result: Future[T] = Future()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            with transaction(self._sessions) as session:
                self._pid.set_result(session.scalar(text("SELECT pg_backend_pid()")))
                result = self._work(session)
            self._result.set_result(result)
        except BaseException as exc:
            if not self._pid.done():
                self._pid.set_exception(exc)
            self._result.set_exception(exc)

    def wait_until_blocked(self, timeout: float = 10.0) -> None:
        """Return once the work waits for another transaction's lock (or has failed)."""
        pid = self._pid.result(timeout)
        deadline = time.monotonic() + timeout
        with self._sessions() as watcher:
            while not self._result.done():
                blockers = watcher.scalar(text("SELECT pg_blocking_pids(:pid)"), {"pid": pid})
                if blockers:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the second transaction never waited for a lock: {pid}")
                watcher.rollback()

    def result(self, timeout: float = 10.0) -> T:
        return self._result.result(timeout)


def wait_until_someone_waits_for(
    holder: Session, sessions: sessionmaker[Session], timeout: float = 10.0
) -> None:
    """Return once another transaction (one the test can't watch itself, such as a
    dispatcher's) waits for a lock that `holder`'s transaction holds."""
    pid = holder.scalar(text("SELECT pg_backend_pid()"))
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
    deadline = time.monotonic() + timeout
    with sessions() as watcher:
        while not watcher.scalar(waiting, {"pid": pid}):
            if time.monotonic() > deadline:
                raise TimeoutError("nobody waited for the held transaction")
            watcher.rollback()  # pg_stat_activity is read once a transaction
