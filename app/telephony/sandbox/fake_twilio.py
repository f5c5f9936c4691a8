"""A local fake of the part of Twilio's REST API the app calls (Messages, Calls, Queue
members, recordings' media), served over real HTTP on loopback for the tests, `nightdesk demo`
and benchmarks.

It answers like Twilio (JSON shapes, error codes, basic auth), records every request, sends
signed status callbacks from a background thread, and lets a test script failures:

    with FakeTwilio() as fake:
        client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url)
        fake.fail_next(1, status=500)
        fake.set_sms_outcome("+15005550001", "undelivered")
        fake.wait_for(lambda: fake.callbacks)

The resources live in `fake_api`, the HTTP edge in `fake_http`; this module is the face
tests use: reading records, scripting outcomes and failures, serving on loopback.
"""

from __future__ import annotations

import copy
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from threading import Event
from types import TracebackType
from typing import TypeVar

import uvicorn

from app.telephony.sandbox.fake_api import CallScript, FakeApi
from app.telephony.sandbox.fake_callbacks import Deliver, SentCallback
from app.telephony.sandbox.fake_http import Fault
from app.telephony.sandbox.fake_resources import (
    API_VERSION,
    DEFAULT_SMS_ERRORS,
    ApiRequest,
    CallOutcome,
    CallRecord,
    MessageRecord,
    QueueRecord,
    SmsOutcome,
    new_sid,
)

T = TypeVar("T")


class FakeTwilio(FakeApi):
    """The fake Twilio: its ASGI app (`.app`), state and scripting, and a loopback server."""

    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        deliver: Deliver | None = None,
        callback_delay: float = 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(
            account_sid or new_sid("AC"),
            auth_token or secrets.token_hex(16),
            deliver=deliver,
            callback_delay=callback_delay,
            clock=clock,
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""

    # -- reading what happened ----------------------------------------------------------

    @property
    def requests(self) -> list[ApiRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[MessageRecord]:
        with self._lock:
            return copy.deepcopy(list(self._messages.values()))

    @property
    def calls(self) -> list[CallRecord]:
        with self._lock:
            return copy.deepcopy(list(self._calls.values()))

    @property
    def callbacks(self) -> list[SentCallback]:
        return self.callback_sender.sent

    # -- scripting --------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        retry_after: int | None = None,
        delay: float = 0.0,
        path_contains: str | None = None,
    ) -> None:
        """The next `count` requests (to paths containing `path_contains`) answer `status`,
        after `delay` seconds; a 429 carries `Retry-After` when given."""
        with self._lock:
            self._faults.append(Fault(count, status, delay, retry_after, path_contains))

    def delay_next(
        self, seconds: float, count: int = 1, *, path_contains: str | None = None
    ) -> None:
        """The next `count` requests succeed but answer late: past the client's timeout,
        the message or call exists although the client saw a timeout."""
        with self._lock:
            self._faults.append(Fault(count, None, seconds, None, path_contains))

    def hold_next(self, *, to: str | None = None, path_contains: str | None = None) -> Event:
        """The next matching request (to `to`, when given) is taken, but its answer is held
        until the returned event is set (or the client gives up): a stalled Twilio."""
        release = Event()
        with self._lock:
            self._faults.append(Fault(1, None, 3600.0, None, path_contains, to, release=release))
        return release

    def misbehave(
        self,
        every: int,
        statuses: Sequence[int | None],
        *,
        stall: float = 15.0,
        retry_after: int | None = 1,
        path_contains: str | None = None,
    ) -> None:
        """From now on one matching request in `every` misbehaves, in turn as `statuses` say:
        an HTTP status answered at once (a 429 with `retry_after`), or None: a stall, taken
        but answered `stall` seconds late."""
        cycle = every * len(statuses)
        with self._lock:
            for turn, status in enumerate(statuses):
                fault = Fault(
                    remaining=10**9,
                    status=status,
                    delay=0.0 if status is not None else stall,
                    retry_after=retry_after if status == 429 else None,
                    path_contains=path_contains,
                    every=cycle,
                    seen=cycle - every * (turn + 1),  # so turn k falls on request every*(k+1)
                )
                self._faults.append(fault)

    def mark_invalid(self, *numbers: str) -> None:
        """Sending to these numbers answers 21211, as for a number that cannot exist."""
        with self._lock:
            self._invalid.update(numbers)

    def mark_unsubscribed(self, *numbers: str) -> None:
        """SMS to these numbers answers 21610: the recipient replied STOP."""
        with self._lock:
            self._unsubscribed.update(numbers)

    def set_sms_outcome(
        self, number: str, outcome: SmsOutcome, error_code: int | None = None
    ) -> None:
        """How SMS to `number` end; undelivered and failed carry 30003 / 30005 by default."""
        with self._lock:
            self._sms[number] = (outcome, error_code or DEFAULT_SMS_ERRORS.get(outcome))

    def set_call_outcome(
        self,
        number: str,
        outcome: CallOutcome = "completed",
        *,
        answered_by: str | None = None,
        duration: int = 30,
    ) -> None:
        """How calls to `number` end, and what AMD reports (human by default) when asked."""
        with self._lock:
            self._call_scripts[number] = CallScript(outcome, answered_by, duration)

    def add_inbound_call(self, from_: str, to: str, *, status_callback: str | None = None) -> str:
        """Registers a caller's in-progress call, so the app can redirect, dequeue or end it."""
        with self._lock:
            now = self._clock()
            call = CallRecord(new_sid("CA"), self.account_sid, to, from_, now, "inbound")
            call.status, call.start_time, call.status_callback = "in-progress", now, status_callback
            self._calls[call.sid] = call
            return call.sid

    def enqueue(self, call_sid: str, queue_name: str) -> str:
        """Puts a call in a queue, as `<Enqueue>` does (creating the queue); returns its sid."""
        with self._lock:
            queue = next((q for q in self._queues.values() if q.friendly_name == queue_name), None)
            if queue is None:
                queue = QueueRecord(new_sid("QU"), self.account_sid, queue_name, self._clock())
                self._queues[queue.sid] = queue
            queue.members.append((call_sid, self._clock()))
            return queue.sid

    def add_recording(self, audio: bytes = b"ID3 not really audio") -> str:
        """A finished recording the account holds; returns the RecordingUrl Twilio would send
        (its media is that URL + `.mp3`, fetched with the account's credentials)."""
        sid = new_sid("RE")
        with self._lock:
            self._recordings[sid] = audio
        return f"https://api.twilio.com/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{sid}"

    def has_recording(self, sid: str) -> bool:
        """Whether the account still holds this recording (nobody deleted it)."""
        with self._lock:
            return sid in self._recordings

    # -- serving ----------------------------------------------------------------------

    def start(self, timeout: float = 10.0, port: int = 0) -> FakeTwilio:
        """Serves on 127.0.0.1 on `port` (a free one by default); returns once it accepts
        requests."""
        if self._server is not None:
            return self
        self.stopping.clear()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted demo
        self._socket.bind(("127.0.0.1", port))
        port = self._socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        # uvicorn installs signal handlers only on the main thread, so a thread is safe.
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="fake-twilio"
        )
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake Twilio server did not start")
            time.sleep(0.002)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        """Stops the server and the callback thread (after the callbacks already due); parties
        still on a call hear it end."""
        self.stopping.set()
        self.lines.close()
        self.parties.wait_idle()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.callback_sender.stop()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Polls `predicate` every few ms until it returns something truthy, and returns that."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.003)
        return result

    def settle(self, timeout: float = 5.0) -> None:
        """Waits until every status change and callback due so far has been sent."""
        if not self.callback_sender.wait_idle(timeout):
            raise TimeoutError(f"callbacks still pending after {timeout} s")
