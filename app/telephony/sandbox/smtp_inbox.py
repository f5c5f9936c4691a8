"""A real SMTP server on loopback (aiosmtpd on a free port), keeping what it receives: the
tests' inbox, and the sandbox's in development (`services.py`).

with SmtpInbox() as inbox:
    sender = SmtpEmailSender(inbox.url, "nightdesk@nightdesk.test")
    ...
    [email] = inbox.wait_for(1)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Envelope:
    """What the client said in MAIL FROM and RCPT TO, as opposed to the headers."""

    mail_from: str
    rcpt_tos: list[str]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpInbox:
    """An SMTP server on 127.0.0.1 that accepts every email, except for the recipients in
    `replies` (address -> reply such as "550 5.1.1 No such user"), and requires AUTH with
    `credentials` when given (over plain text: it is a loopback test server)."""

    def __init__(
        self,
        *,
        replies: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.replies = dict(replies or {})
        self.credentials = credentials
        self.envelopes: list[Envelope] = []
        self.on_message: Callable[[EmailMessage], None] | None = None  # called as each arrives
        self._messages: list[EmailMessage] = []
        self._arrived_at: list[datetime] = []
        self._arrived = threading.Condition()
        # aiosmtpd's Controller checks readiness by connecting to its own port, so port 0
        # does not work: pick a free port first.
        auth: dict[str, Any] = {}
        if credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname="127.0.0.1", port=free_port(), **auth)

    @property
    def url(self) -> str:
        """`smtp://127.0.0.1:PORT`, with the credentials when the server wants them."""
        login = ""
        if self.credentials is not None:
            user, password = self.credentials
            login = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return f"smtp://{login}127.0.0.1:{self._controller.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._arrived:
            return list(self._messages)

    @property
    def arrivals(self) -> list[tuple[datetime, EmailMessage]]:
        """Each email with when it arrived (UTC), oldest first."""
        with self._arrived:
            return list(zip(self._arrived_at, self._messages, strict=True))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Waits until `count` emails have arrived and returns them all."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._messages)} of {count} emails arrived")
                self._arrived.wait(remaining)
            return list(self._messages)

    def start(self) -> SmtpInbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpInbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- aiosmtpd handler hooks (run on the controller's event loop thread) ----------------

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(parsed, EmailMessage)
        with self._arrived:
            self.envelopes.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos)))
            self._messages.append(parsed)
            self._arrived_at.append(datetime.now(UTC))
            self._arrived.notify_all()
        if self.on_message is not None:
            self.on_message(parsed)
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self.credentials
        ok = (
            isinstance(auth_data, LoginPassword)
            and expected is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == expected
        )
        # handled=False: aiosmtpd then answers 535 itself (by default it answers nothing).
        return AuthResult(success=ok, handled=False)
