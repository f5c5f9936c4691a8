"""`nightdesk serve` as a real process for the fault suite, and Twilio's side of a busy night:
clients whose every message goes to a contact of its own, callers who behave as Twilio does when
the server is down, and counts taken from outside (the fake Twilio, `nightdesk messages`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from app.dispatch.models import OPEN_DELIVERY, Delivery
from app.flows.loader import parse_flow
from app.messages.models import message_ref
from app.telephony.sandbox.caller import Conversation, Press, Retries, Say, SimulatedCaller
from app.telephony.sandbox.fake_twilio import FakeTwilio

NIGHTDESK = str(Path(sys.executable).with_name("nightdesk"))
REF = re.compile(r"#([0-9A-Z]+)\b")


def client_number(index: int) -> str:
    return f"+4411349{index:05d}"


def contact_number(index: int) -> str:
    return f"+4479111{index:05d}"


def caller_number(index: int) -> str:
    return f"+4411349{50000 + index:05d}"  # landlines: no texts back to the callers


def flow_for(index: int) -> str:
    """A client whose messages go to one contact of its own, so no text waits for another."""
    return textwrap.dedent(f"""\
        client: faults-{index:03d}
        name: Fault client {index}
        numbers: ["{client_number(index)}"]
        timezone: Europe/London
        caller_updates: false
        contacts:
          - {{id: on_call_person, name: On Call {index}, phone: "{contact_number(index)}",
             channels: [sms]}}
        escalation:
          steps:
            - {{notify: on_call_person, wait_minutes: 60}}
          repeat: 0
        steps:
          menu:
            type: menu
            prompt: Press 1 to leave a message.
            options: [{{key: "1", goto: name}}]
            default: name
          name:
            type: ask
            prompt: Your name, please.
            save_as: name
            next: message
          message:
            type: record
            prompt: Leave your message after the tone.
            max_seconds: 60
            next: take
          take:
            type: take_message
            urgency: urgent
            say: Thank you, your message has been passed on.
        """)


def parsed_flows(count: int) -> list[Any]:
    return [parse_flow(flow_for(i), f"faults-{i:03d}.yaml") for i in range(count)]


@dataclass
class Service:
    """One `nightdesk serve` (dispatcher inside), started, killed and started again on a
    listening socket this process holds, as systemd's socket activation does: while the
    server is down, Twilio's requests wait in the socket's queue instead of being refused."""

    database_url: str
    fake: FakeTwilio
    workdir: Path
    name: str = "serve"
    worker: bool = False  # `nightdesk worker`: the dispatcher alone, no socket
    public_url: str = ""  # default: this server's own address
    overrides: dict[str, str] = field(default_factory=dict)  # more NIGHTDESK_ settings
    listener: socket.socket = field(init=False)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.listener.set_inheritable(True)

    @property
    def port(self) -> int:
        port: int = self.listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTDESK_")}
        env.update(
            NIGHTDESK_DATABASE_URL=self.database_url,
            NIGHTDESK_PUBLIC_URL=self.public_url or self.url,
            NIGHTDESK_TWILIO_API_BASE=self.fake.base_url,
            NIGHTDESK_TWILIO_ACCOUNT_SID=self.fake.account_sid,
            NIGHTDESK_TWILIO_AUTH_TOKEN=self.fake.auth_token,
            NIGHTDESK_TWILIO_TIMEOUT="1",  # so a lease left by a killed server runs out in 6 s
            NIGHTDESK_SPOOL_DIR=str(self.workdir / f"spool-{self.name}"),
            NIGHTDESK_FLOWS_DIR=str(self.workdir),
            NIGHTDESK_LOG_LEVEL="WARNING",
        )
        env.update(self.overrides)
        return env

    def start(self, deadline: float = 30) -> None:
        self.starts += 1
        log = (self.workdir / f"{self.name}-{self.starts}.log").open("wb")
        fd = self.listener.fileno()
        command = ["worker"] if self.worker else ["serve", "--fd", str(fd)]
        self.process = subprocess.Popen(
            [NIGHTDESK, *command], env=self.env(), stdout=log, stderr=log, pass_fds=(fd,),
        )  # fmt: skip
        if self.worker:
            return
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise RuntimeError(f"nightdesk serve exited:\n{self.log_tail()}")
            try:  # waits in the socket's queue until the server takes it
                if httpx.get(f"{self.url}/healthz", timeout=deadline).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)  # polling a process we started, with a deadline
        raise RuntimeError(f"nightdesk serve did not answer in {deadline} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last commit, connections cut mid-request."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if self.worker else signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.listener.close()

    def log_tail(self, lines: int = 30) -> str:
        log = self.workdir / f"{self.name}-{self.starts}.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def messages(self) -> list[dict[str, Any]]:
        """`nightdesk messages list --json`, as an operator reads them."""
        listed = subprocess.run(
            [NIGHTDESK, "messages", "list", "--json"], env=self.env(), capture_output=True,
            check=True,
        )  # fmt: skip
        messages: list[dict[str, Any]] = json.loads(listed.stdout)
        return messages


@contextmanager
def serving(database_url: str, fake: FakeTwilio, workdir: Path) -> Iterator[Service]:
    service = Service(database_url, fake, workdir)
    service.start()
    try:
        yield service
    finally:
        service.stop()


@dataclass(frozen=True)
class Placed:
    """A call as its caller lived it: what was heard, and when (time.monotonic())."""

    conversation: Conversation
    began: float
    ended: float


def place_calls(
    service: Service,
    count: int,
    placed: list[Placed],
    stagger: float = 0.25,
    listening: float = 0.3,
    transport: httpx.BaseTransport | None = None,
) -> list[threading.Thread]:
    """`count` callers ringing one after another, each their own client, leaving a message
    as Twilio carries the call: a request that goes unanswered (cut off by a kill, or 15 s
    without an answer) is repeated once, and a request for TwiML that still fails goes to the
    number's fallback URL. Each call goes to `placed` when it ends."""

    def call(index: int) -> None:
        # Twilio waits 15 s for an answer: https://www.twilio.com/docs/usage/webhooks
        public_url = service.public_url or service.url
        with httpx.Client(base_url=public_url, timeout=15, transport=transport) as http:
            time.sleep(index * stagger)  # callers ring one after another, in real time
            began = time.monotonic()
            conversation = SimulatedCaller(
                http, public_url=public_url, auth_token=service.fake.auth_token,
                account_sid=service.fake.account_sid, from_number=caller_number(index),
                to_number=client_number(index), fallback_path="/twilio/fallback",
                retries=Retries(), listening=listening,
                script=[Press("1"), Say(f"Caller {index}"), Say(f"Message {index} is urgent")],
            ).run()  # fmt: skip
            placed.append(Placed(conversation, began, time.monotonic()))

    threads = [threading.Thread(target=call, args=(i,), name=f"caller-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def settled(database_url: str) -> bool:
    """No delivery pending or in a worker's hands: nothing more will be sent."""
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            open_ = connection.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status.in_(OPEN_DELIVERY))
            )
            total = connection.scalar(select(func.count()).select_from(Delivery))
        return open_ == 0 and bool(total)
    finally:
        engine.dispose()


def wait_until(condition: Callable[[], bool], deadline: float, what: str) -> None:
    until = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > until:
            raise AssertionError(f"{what}: not within {deadline} s")
        time.sleep(0.1)  # polling processes we do not own, with a deadline


@dataclass(frozen=True)
class Count:
    """What happened, counted from outside: messages per call, texts per message's contact."""

    calls: int
    messages_per_call: dict[int, int]
    texts_per_message: dict[int, int]  # by message id: texts to its contact naming its ref
    texts_in_all: int

    @classmethod
    def take(cls, service: Service, calls: int) -> Count:
        messages = service.messages()
        by_caller = Counter(m["caller"] for m in messages)
        texts = service.fake.messages
        per_message: dict[int, int] = {}
        for message in messages:
            index = int(message["caller"][-5:]) - 50000
            ref = message_ref(message["id"])
            per_message[message["id"]] = sum(
                1 for t in texts if t.to == contact_number(index) and ref in REF.findall(t.body)
            )
        return cls(
            calls=calls,
            messages_per_call={i: by_caller[caller_number(i)] for i in range(calls)},
            texts_per_message=per_message,
            texts_in_all=len(texts),
        )

    def exactly_once(self) -> bool:
        return (
            set(self.messages_per_call.values()) == {1}
            and set(self.texts_per_message.values()) == {1}
            and self.texts_in_all == self.calls
        )
