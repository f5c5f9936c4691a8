"""Status callbacks from the fake Twilio: one background thread runs status steps in order
and sends each resulting callback signed with `X-Twilio-Signature`, as Twilio does."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict[str, str], dict[str, str]], None]
"""(url, form params, headers): how a callback reaches the app. Raise to report a failure."""


@dataclass(frozen=True)
class Callback:
    """A form-encoded POST Twilio would make."""

    url: str
    params: dict[str, str]


@dataclass(frozen=True)
class SentCallback:
    """A callback the fake sent, and what went wrong delivering it, if anything."""

    url: str
    params: dict[str, str]
    headers: dict[str, str]
    error: str | None = None


Step = Callable[[], Callback | None]
"""Applies one status change to the fake's state; returns the callback it triggers, if any."""


class HttpDeliver:
    """The default delivery: a real HTTP POST to the absolute callback URL."""

    def __init__(self, timeout: float = 15.0) -> None:
        # Twilio gives up on a webhook after 15 s.
        self._client = httpx.Client(timeout=timeout)

    def __call__(self, url: str, params: dict[str, str], headers: dict[str, str]) -> None:
        response = self._client.post(url, data=params, headers=headers)
        if response.status_code >= 400:
            raise RuntimeError(f"callback answered HTTP {response.status_code}")

    def close(self) -> None:
        self._client.close()


class CallbackSender:
    """Runs status steps one at a time, in submission order, on its own thread."""

    def __init__(self, auth_token: str, deliver: Deliver | None = None, delay: float = 0.0):
        self._validator = RequestValidator(auth_token)
        self._deliver = deliver
        self.delay = delay
        self._steps: queue.Queue[Step | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._lock = threading.Lock()
        self._sent: list[SentCallback] = []
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> list[SentCallback]:
        with self._lock:
            return list(self._sent)

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    def submit(self, step: Step) -> None:
        """Queues a step; the thread starts with the first one."""
        with self._idle:
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fake-twilio-callbacks")
                self._thread.daemon = True
                self._thread.start()
        self._steps.put(step)

    def stop(self) -> None:
        """Finishes the steps already submitted, then stops the thread."""
        with self._idle:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._steps.put(None)
            thread.join(timeout=10)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Waits until every submitted step has run; False if `timeout` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def sign(self, url: str, params: dict[str, str]) -> dict[str, str]:
        """The headers Twilio sends with a webhook, signed over the exact URL and form."""
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            "X-Twilio-Signature": self._validator.compute_signature(url, params),
        }

    def _run(self) -> None:
        if self._deliver is not None:
            self._run_steps(self._deliver)
            return
        with contextlib.closing(HttpDeliver()) as http:  # one connection pool per thread
            self._run_steps(http)

    def _run_steps(self, deliver: Deliver) -> None:
        while (step := self._steps.get()) is not None:
            self._run_step(step, deliver)

    def _run_step(self, step: Step, deliver: Deliver) -> None:
        try:
            if self.delay:
                time.sleep(self.delay)
            callback = step()
            if callback is not None:
                self._send(callback, deliver)
        except Exception:
            log.exception("fake twilio status step failed")
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _send(self, callback: Callback, deliver: Deliver) -> None:
        headers = self.sign(callback.url, callback.params)
        error = None
        try:
            deliver(callback.url, dict(callback.params), dict(headers))
        except Exception as exc:  # Twilio logs a failed callback and moves on
            error = f"{type(exc).__name__}: {exc}"
            log.warning("fake twilio callback to %s failed: %s", callback.url, error)
        with self._lock:
            self._sent.append(SentCallback(callback.url, callback.params, headers, error))
