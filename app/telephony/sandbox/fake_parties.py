"""Simulated people who answer the calls the app places through the fake Twilio: a PA's phone
in the sandbox picks up, hears the whisper and presses 1. Each runs as a `SimulatedCaller` on
a thread of its own, fetching the call's Url as Twilio does once a call is answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app.telephony.sandbox.caller import SimulatedCaller
from app.telephony.sandbox.conversation import CallerInput, Conversation
from app.telephony.sandbox.fake_resources import CallRecord
from app.telephony.sandbox.switchboard import Switchboard

log = logging.getLogger(__name__)

ScriptFor = Callable[[CallRecord], Sequence[CallerInput] | None]
"""What the person called does when they pick up, or None: nobody simulated answers this call."""


@dataclass(frozen=True)
class _Answering:
    script_for: ScriptFor
    http: httpx.Client
    on_done: Callable[[CallRecord, Conversation], None] | None


class Parties:
    """The people who pick up, and what each call they answered sounded like."""

    def __init__(self, switchboard: Switchboard, account_sid: str, auth_token: str) -> None:
        self._switchboard = switchboard
        self._account_sid, self._auth_token = account_sid, auth_token
        self._answering: _Answering | None = None
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.conversations: dict[str, Conversation] = {}

    def pick_up(
        self,
        script_for: ScriptFor,
        http: httpx.Client,
        on_done: Callable[[CallRecord, Conversation], None] | None = None,
    ) -> None:
        """From now on, calls `script_for` gives a script are answered and played through
        `http` (a client that reaches the app at the calls' Url)."""
        self._answering = _Answering(script_for, http, on_done)

    def script_for(self, call: CallRecord) -> Sequence[CallerInput] | None:
        answering = self._answering
        if answering is None or call.url is None:
            return None
        return answering.script_for(call)

    def answer(self, call: CallRecord, script: Sequence[CallerInput]) -> None:
        """The call was answered: its person plays it on a thread of their own."""
        answering = self._answering
        if answering is None or call.url is None:
            return
        thread = threading.Thread(
            target=self._play, args=(answering, call, list(script)), daemon=True,
            name=f"sandbox-party-{call.sid[-6:]}",
        )  # fmt: skip
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait for every party's call to end (tests, before they look)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _play(self, answering: _Answering, call: CallRecord, script: list[CallerInput]) -> None:
        url = urlsplit(call.url or "")
        path = url.path + (f"?{url.query}" if url.query else "")
        try:
            conversation = SimulatedCaller(
                answering.http, public_url=f"{url.scheme}://{url.netloc}",
                auth_token=self._auth_token, account_sid=self._account_sid,
                from_number=call.from_, to_number=call.to, script=script, call_sid=call.sid,
                voice_path=path, status_callback_path=None, switchboard=self._switchboard,
                direction="outbound-api",
            ).run()  # fmt: skip
        except Exception:
            log.exception("sandbox party failed")
            self._switchboard.hang_up(call.sid)
            return
        with self._lock:
            self.conversations[call.sid] = conversation
        if answering.on_done is not None:
            answering.on_done(call, conversation)
