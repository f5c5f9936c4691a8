"""The console's shared parts, built once per app: the live view every console watches, the
line to the PAs' phones, and the recorder the call path tells of waiting callers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.clients.flows import FlowStore
from app.console.browser import BrowserPhone, browser_phone_for
from app.console.live import LiveConsole, listen_for_changes, publish_on_commit
from app.console.phone import Phone, TwilioPhone
from app.console.queries import Snapshot, load_snapshot
from app.console.queue import QueueRecorder
from app.console.service import heartbeat
from app.db import Database
from app.settings import Settings
from app.telephony.rest import make_twilio_client
from app.timeutil import Clock


@dataclass
class Console:
    database: Database
    flows: FlowStore
    phone: Phone
    clock: Clock
    live: LiveConsole[Snapshot] = field(init=False)
    recorder: QueueRecorder = field(default_factory=QueueRecorder)
    browser: BrowserPhone | None = None  # answering in the browser, when it can

    def __post_init__(self) -> None:
        self.live = LiveConsole(lambda: self.database.run(load_snapshot))
        if self.database.engine.dialect.name != "postgresql":
            publish_on_commit(self.database.sessions, self.live)  # one process: its commits

    async def seen(self, user_id: int) -> None:
        """A console of this person's is open (its live connection beats)."""
        now = self.clock()
        await self.database.run(lambda session: heartbeat(session, user_id, now))

    def start(self, database_url: str) -> Callable[[], None]:
        """PostgreSQL: live updates from every replica's commits, heard on a LISTEN thread;
        returns a function that stops it."""
        if not database_url.startswith("postgresql"):
            return lambda: None
        stop = threading.Event()
        thread = threading.Thread(
            target=listen_for_changes, args=(database_url, self.live, stop),
            name="console-listen", daemon=True,
        )  # fmt: skip
        thread.start()

        def stop_listening() -> None:
            stop.set()
            thread.join(timeout=5)

        return stop_listening

    async def close(self) -> None:
        await self.live.close()


def make_console(settings: Settings, database: Database, flows: FlowStore, clock: Clock) -> Console:
    """The console as `nightdesk serve` runs it: PAs' phones rung through Twilio's REST API
    (or wherever NIGHTDESK_TWILIO_API_BASE points: the sandbox, the tests' fake)."""
    client = make_twilio_client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base,
        timeout=settings.twilio_timeout,
    )  # fmt: skip
    return Console(database, flows, TwilioPhone(client), clock, browser=browser_phone_for(settings))
