"""The load generator: virtual callers, each on its own keep-alive connection, making whole calls
(or only their first step: `CallBook(..., whole=False)`).

Cheap per request on purpose (it shares two cores with the server): raw HTTP/1.1 over asyncio
streams on uvloop, and every request signed before the timed window, exactly as Twilio signs it
(`RequestValidator.compute_signature` over the public URL and the form).

Each call follows the acme-plumbing demo flow to a message, as Twilio would drive it:

    POST /twilio/voice                     -> the greeting; a menu (closed) or a transfer (open)
    POST /twilio/voice/step?turn=1         Digits=2 (menu: "leave a message"), or
                                           DialCallStatus=no-answer (the office didn't answer)
    POST /twilio/voice/step?turn=2         SpeechResult=Sam Taylor       (name)
    POST /twilio/voice/step?turn=3         Digits=07911123456            (callback number)
    POST /twilio/voice/step?turn=4         Digits=1                      (yes, that's right)
    POST /twilio/voice/step?turn=5         RecordingUrl=...              (message saved, goodbye)
    POST /twilio/voice/status              CallStatus=completed          (204)

The flow branches on the real clock (office hours, bank holidays); both versions of turn 1 are
signed and the caller picks the one that matches the greeting it got, so any time of day works.

First steps of new calls are the first request alone, each with a CallSid never seen before: the
costliest step (the call's row is created, its flow looked up and the greeting rendered).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "b" * 32
DIALLED = "+441134960000"  # acme-plumbing's number in voice_flows/acme-plumbing.yaml
RECORDINGS = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings"
WHOLE_CALL_STEPS = 7  # requests in one of CallBook's whole calls, first step to status callback


@dataclass(frozen=True)
class Exchange:
    """One request, ready to write, and what its answer must look like."""

    request: bytes
    status: int
    marker: bytes  # the body must contain it (when bodies are checked); b"" for none


@dataclass(frozen=True)
class ScriptedCall:
    """One call's requests. `first` answers with a menu (office closed) or a Dial (open).
    With only the first step, `when_closed` and `when_open` are None and `rest` is empty."""

    first: Exchange
    when_closed: Exchange | None
    when_open: Exchange | None
    rest: tuple[Exchange, ...]


class CallBook:
    """Signed calls handed out in order; signed ahead of time, and on the spot if it runs out.

    `whole=False`: only each call's first request (POST /twilio/voice with a fresh CallSid)."""

    def __init__(
        self, host: str, port: int, auth_token: str, size: int, *, whole: bool = True
    ) -> None:
        self.host, self.port = host, port
        self.public_url = f"http://{host}:{port}"
        self.whole = whole
        self._validator = RequestValidator(auth_token)
        self._run = random.getrandbits(32)
        self._calls = [self._script(i) for i in range(size)]
        self._next = 0
        self.signed_on_the_spot = 0

    def restart(self) -> None:
        """Hand out the same calls again (to a server with a fresh database)."""
        self._next = 0
        self.signed_on_the_spot = 0

    def take(self) -> ScriptedCall:
        index = self._next
        self._next += 1
        if index < len(self._calls):
            return self._calls[index]
        self.signed_on_the_spot += 1
        return self._script(index)

    def again(self, port: int) -> Replay:
        """The calls signed so far, over and over, sent to another port (see Replay)."""
        return Replay(self, port)

    def _script(self, index: int) -> ScriptedCall:
        sid = f"CA{self._run:08x}{index:024x}"
        caller = f"+447911{index % 1_000_000:06d}"
        common = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": sid,
            "From": caller,
            "To": DIALLED,
            "Caller": caller,
            "Called": DIALLED,
            "CallStatus": "in-progress",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            "FromCountry": "GB",
            "ToCountry": "GB",
        }

        def step(turn: int, marker: bytes, **said: str) -> Exchange:
            return self._exchange(f"/twilio/voice/step?turn={turn}", {**common, **said}, marker)

        first = self._exchange("/twilio/voice", {**common, "CallStatus": "ringing"}, b"turn=1")
        if not self.whole:
            return ScriptedCall(first, None, None, ())
        recording = f"RE{self._run:08x}{index:024x}"
        return ScriptedCall(
            first=first,
            when_closed=step(1, b"turn=2", Digits="2"),
            when_open=step(1, b"turn=2", DialCallStatus="no-answer", DialCallDuration="0"),
            rest=(
                step(2, b"turn=3", SpeechResult="Sam Taylor", Confidence="0.92"),
                step(3, b"turn=4", Digits="07911123456"),
                step(4, b"turn=5", Digits="1"),
                step(
                    5,
                    b"<Hangup",
                    RecordingUrl=f"{RECORDINGS}/{recording}",
                    RecordingSid=recording,
                    RecordingDuration="14",
                ),
                self._exchange(
                    "/twilio/voice/status",
                    {**common, "CallStatus": "completed", "CallDuration": "75"},
                    b"",
                    status=204,
                ),
            ),
        )

    def _exchange(
        self, path: str, params: dict[str, str], marker: bytes, status: int = 200
    ) -> Exchange:
        signature = self._validator.compute_signature(self.public_url + path, params)
        body = urlencode(params).encode()
        head = (
            f"POST {path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n"
            "Accept: */*\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {signature}\r\n"
            "\r\n"
        )
        return Exchange(head.encode() + body, status, marker)


class Connection:
    """One keep-alive HTTP/1.1 connection: write a request, read one whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if status in (204, 304):
            return status, b""
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lowered.index(b"\r\n", at + 2)
            length = int(lowered[at + 17 : end])
            return status, await self.reader.readexactly(length)
        if b"\r\ntransfer-encoding: chunked" in lowered:
            return status, await self._chunks()
        return status, b""

    async def _chunks(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self.reader.readexactly(size + 2))
            if size == 0:
                return b"".join(parts)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Tally:
    """What one scenario measured: latencies (s) of requests in the window, errors, calls."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    calls_finished: int = 0
    open_branch: int = 0
    closed_branch: int = 0
    late_sends: list[float] = field(default_factory=list)  # open loop: how late each send was

    def error(self, kind: str, example: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(example[:300])


class Replay:
    """A CallBook's calls again, in a loop, aimed at `port`: for the ceiling, which checks no
    signature and keeps no state, measured again between the real servers' runs without using
    up (or signing more of) the calls they need."""

    def __init__(self, book: CallBook, port: int) -> None:
        self.host, self.port = book.host, port
        self._calls = book._calls
        self._next = 0
        self.signed_on_the_spot = 0  # never: it only replays

    def take(self) -> ScriptedCall:
        call = self._calls[self._next % len(self._calls)]
        self._next += 1
        return call


Book = CallBook | Replay


class Caller:
    """A virtual caller on its own connection, making one scripted call after another."""

    def __init__(self, book: Book, tally: Tally, check_bodies: bool) -> None:
        self.book, self.tally, self.check_bodies = book, tally, check_bodies
        self.connection: Connection | None = None

    def exchanges(self) -> Iterator[Exchange | None]:
        """The requests of successive calls; None marks the end of a call (or first step)."""
        while True:
            call = self.book.take()
            yield call.first
            turn_1 = call.when_open if self._last_was_open else call.when_closed
            if turn_1 is not None:
                yield turn_1
            yield from call.rest
            yield None

    _last_was_open = False

    async def send(self, exchange: Exchange) -> tuple[float, float]:
        """Make one request; the times it was sent and answered (perf_counter)."""
        if self.connection is None:
            self.connection = await Connection.open(self.book.host, self.book.port)
        sent = time.perf_counter()
        try:
            status, body = await self.connection.exchange(exchange.request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.connection.close()
            self.connection = None
            self.tally.error("connection", f"{type(exc).__name__}: {exc}")
            return sent, time.perf_counter()
        answered = time.perf_counter()
        if status != exchange.status:
            self.tally.error(f"HTTP {status}", body.decode(errors="replace"))
        elif self.check_bodies and exchange.marker not in body:
            self.tally.error("unexpected TwiML", body.decode(errors="replace"))
        if exchange.marker == b"turn=1":  # the greeting: which branch did the flow take?
            self._last_was_open = b"<Dial" in body
            if self._last_was_open:
                self.tally.open_branch += 1
            else:
                self.tally.closed_branch += 1
        return sent, answered

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


async def saturate(
    book: Book, callers: int, warmup: float, duration: float, check_bodies: bool
) -> Tally:
    """Closed loop: `callers` callers with no think time. Counts what completes in the window."""
    tally = Tally()
    start = time.perf_counter()
    window = (start + warmup, start + warmup + duration)

    async def run(caller: Caller) -> None:
        for exchange in caller.exchanges():
            if exchange is None:
                tally.calls_finished += 1
                continue
            if time.perf_counter() >= window[1]:
                return
            sent, answered = await caller.send(exchange)
            if sent >= window[0] and answered <= window[1]:
                tally.latencies.append(answered - sent)

    await _all(book, tally, callers, check_bodies, run)
    return tally


async def busy_night(
    book: Book,
    callers: int,
    every: float,
    duration: float,
    check_bodies: bool,
    stop: asyncio.Event | None = None,
    ramp: float = 0.0,
) -> Tally:
    """Open loop: each caller takes one step every `every` seconds, for `duration` seconds or
    until `stop` is set, whichever comes first.

    Each caller's first step falls at random within the first `ramp` seconds (within the first
    `every` when `ramp` is shorter), and only what is sent after the ramp is counted. A ramp as
    long as a whole call puts the callers at different steps of their calls, as independent
    callers are: with every caller starting within the same second, all of them reach the step
    that saves a message in the same second, a burst of messages once a call's length."""
    tally = Tally()
    rng = random.Random(20261225)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    counted_from = start + ramp
    end = counted_from + duration

    async def run(caller: Caller) -> None:
        due = start + rng.random() * max(every, ramp)
        for exchange in caller.exchanges():
            if exchange is None:
                tally.calls_finished += 1
                continue
            if due >= end or (stop is not None and stop.is_set()):
                return
            await asyncio.sleep(max(0.0, due - loop.time()))
            if stop is not None and stop.is_set():
                return
            counted = due >= counted_from
            if counted:
                tally.late_sends.append(max(0.0, loop.time() - due))
            sent, answered = await caller.send(exchange)
            if counted:
                tally.latencies.append(answered - sent)
            due += every

    await _all(book, tally, callers, check_bodies, run)
    return tally


async def _all(
    book: Book,
    tally: Tally,
    callers: int,
    check_bodies: bool,
    run: Callable[[Caller], Awaitable[None]],
) -> None:
    crowd = [Caller(book, tally, check_bodies) for _ in range(callers)]
    try:
        await asyncio.gather(*(run(caller) for caller in crowd))
    finally:
        for caller in crowd:
            caller.close()


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]
