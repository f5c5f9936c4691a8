"""Live updates for every open console: what changed is announced, each console is sent a
fresh view within a moment.

A unit of work that changes the queue or a PA's presence calls `announce(session, what)`.
- SQLite (one process): the commit hands the change to this process's `LiveConsole`.
- PostgreSQL (any number of replicas): `pg_notify` carries the change (ids only) at commit, and
  every process's `listen_for_changes` thread hands it to its own `LiveConsole`.
Either way the `LiveConsole` loads one snapshot for all its consoles, and every console gets a
full snapshot when it (re)connects, so a missed notice only delays an update, never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db import listen

log = logging.getLogger("nightdesk.console")

CHANNEL = "nightdesk_console"
_PENDING = "console_changes"
T = TypeVar("T")


def announce(session: Session, what: str) -> None:
    """Tell every console that `what` ("entry:12", "presence:3") changed, once this commits."""
    pending: set[str] = session.info.setdefault(_PENDING, set())
    if what in pending:
        return
    pending.add(what)
    if session.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: listeners in every process hear it at commit, not before.
        session.execute(select(func.pg_notify(CHANNEL, what)))


class LiveConsole(Generic[T]):
    """This process's consoles and the latest snapshot they show.

    `changed()` may be called from any thread; snapshots are loaded on the event loop of the
    consoles that watch, one load for all of them however many changes arrived meanwhile.
    """

    def __init__(self, load: Callable[[], Awaitable[T]]) -> None:
        self._load = load
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty: asyncio.Event | None = None
        self._fresh: asyncio.Condition | None = None
        self._refresher: asyncio.Task[None] | None = None
        self.version = 0
        self.snapshot: T | None = None
        self.watchers = 0

    def changed(self, what: Iterable[str] = ()) -> None:
        """Something consoles show has changed: load a new snapshot soon. Thread-safe."""
        loop, dirty = self._loop, self._dirty
        if loop is None or dirty is None or loop.is_closed():
            return  # nobody is watching in this process
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(dirty.set)

    async def current(self) -> tuple[int, T]:
        """A snapshot loaded now (a console that connects or reconnects starts from this)."""
        self._start()
        snapshot = await self._load()
        return self.version, snapshot

    async def next(self, seen: int, patience: float) -> tuple[int, T] | None:
        """The first snapshot newer than version `seen`, or None after `patience` seconds."""
        self._start()
        assert self._fresh is not None
        async with self._fresh:
            try:
                async with asyncio.timeout(patience):
                    await self._fresh.wait_for(lambda: self.version > seen)
            except TimeoutError:
                return None
            assert self.snapshot is not None
            return self.version, self.snapshot

    def _start(self) -> None:
        if self._refresher is not None and not self._refresher.done():
            return
        self._loop = asyncio.get_running_loop()
        self._dirty = asyncio.Event()
        self._fresh = asyncio.Condition()
        self._refresher = self._loop.create_task(self._refresh_forever(), name="console-live")

    async def _refresh_forever(self) -> None:
        assert self._dirty is not None
        assert self._fresh is not None
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                snapshot = await self._load()
            except Exception:
                log.exception("console_snapshot_failed")
                await asyncio.sleep(1.0)  # then try again: the change is still unshown
                self._dirty.set()
                continue
            async with self._fresh:
                self.snapshot, self.version = snapshot, self.version + 1
                self._fresh.notify_all()

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()


def publish_on_commit(sessions: sessionmaker[Session], live: LiveConsole[Any]) -> None:
    """SQLite: hand a committed unit's changes to this process's consoles."""

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        changes = session.info.pop(_PENDING, None)
        if changes:
            live.changed(changes)

    @event.listens_for(sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(_PENDING, None)


def listen_for_changes(database_url: str, live: LiveConsole[Any], stop: threading.Event) -> None:
    """PostgreSQL LISTEN: changes committed by any replica reach this process's consoles. On
    each (re)connection every console is refreshed, since notices sent while away are gone."""
    listen(database_url, CHANNEL, stop, lambda payload: live.changed([payload or "listening"]))
