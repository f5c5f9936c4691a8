"""How a notification leaves Nightdesk: SMS and calls through Twilio, email through SMTP,
behind one `Sender` protocol that the dispatcher calls from its worker threads.

`send()` returns the provider's id or raises: `TransientSendError` means "try again later",
`PermanentSendError` means "this delivery can never succeed". `find_previous()` answers,
before retrying a send whose outcome is unknown (a timeout, a worker that died mid-send),
whether the provider already accepted it, so nobody is notified twice.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from app.flows.schema import Channel
from app.settings import Settings
from app.telephony.rest import make_twilio_client

# Twilio's clock and ours differ a little, and its dates have whole seconds only.
CLOCK_SLACK = timedelta(seconds=30)
# How many of the newest messages or calls between the two numbers find_previous reads.
LOOKBACK = 50
# https://www.twilio.com/docs/voice/api/call-resource#statuscallbackevent
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
RING_SECONDS = 25  # Twilio's default is 60; an unanswered call should let escalation move on
# Trial accounts prefix every SMS body with this; the Message resource shows it.
TRIAL_PREFIX = "Sent from your Twilio trial account - "


@dataclass(frozen=True)
class Outgoing:
    """One notification to send: what the dispatcher knows about a delivery."""

    delivery_id: int
    channel: Channel
    to: str  # +E.164 or an email address
    from_number: str  # the client's Twilio number (+E.164), for SMS and calls
    body: str  # SMS text, or the email's plain-text body
    ref: str  # the message's short reference, e.g. "4F" (appears in SMS bodies)
    attempt_started: datetime  # aware UTC: when this delivery was first attempted
    status_callback: str  # absolute URL for Twilio's status callbacks
    call_url: str | None = None  # voice: the TwiML Twilio fetches when the call is answered
    subject: str | None = None  # email
    html: str | None = None  # email


class SendError(Exception):
    """A send that failed; `code` is Twilio's error code or the SMTP reply code. A transient
    error without a code had no answer (timeout, lost connection): the provider may have
    accepted the send, so ask `find_previous` before trying again."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class TransientSendError(SendError):
    """Worth retrying: the provider is busy or unreachable, or our setup needs fixing."""


class PermanentSendError(SendError):
    """Never worth retrying: this address, number or content will always be refused."""


class Sender(Protocol):
    """Delivers one channel's notifications; raises SendError subclasses to say what next."""

    def send(self, outgoing: Outgoing) -> str:
        """Sends and returns the provider's id (SM…, CA…, or the email's Message-ID)."""
        ...

    def find_previous(self, outgoing: Outgoing) -> str | None:
        """The provider's id of an earlier attempt at this delivery that it accepted."""
        ...


# --- Twilio ------------------------------------------------------------------------------


class TwilioSmsSender:
    """SMS through Twilio's Messages resource."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def send(self, outgoing: Outgoing) -> str:
        """Creates the message; Twilio queues it and reports progress to `status_callback`."""
        with _twilio_errors():
            message = self._client.messages.create(
                to=outgoing.to,
                from_=outgoing.from_number,
                body=outgoing.body,
                status_callback=outgoing.status_callback,
            )
        return str(message.sid)

    def find_previous(self, outgoing: Outgoing) -> str | None:
        """The earliest message between the same numbers with the same body created since
        the attempt started (less `CLOCK_SLACK`); the body carries the message's ref.

        No `DateSent>` filter: Twilio filters by day only, and a message still queued
        (behind the number's rate limit) has no DateSent yet, so such a filter would hide
        the very message we look for. Only the newest `LOOKBACK` messages are read.
        A different delivery with the same body to the same person in that window would
        be taken for this one.
        """
        with _twilio_errors():
            messages = self._client.messages.list(
                to=outgoing.to, from_=outgoing.from_number, limit=LOOKBACK
            )
        bodies = (outgoing.body, TRIAL_PREFIX + outgoing.body)
        return _earliest_since(outgoing, [m for m in messages if m.body in bodies])


class TwilioVoiceSender:
    """Notification calls through Twilio's Calls resource, with answering-machine detection."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def send(self, outgoing: Outgoing) -> str:
        """Places the call; Twilio fetches `call_url` when it is answered.

        `MachineDetection=Enable` makes Twilio add `AnsweredBy` (human, machine_start, fax,
        unknown) to its request for `call_url`, so the TwiML can leave a voicemail instead
        of asking for a keypress: https://www.twilio.com/docs/voice/answering-machine-detection
        """
        if outgoing.call_url is None:
            raise PermanentSendError("a voice delivery needs call_url")
        with _twilio_errors():
            call = self._client.calls.create(
                to=outgoing.to,
                from_=outgoing.from_number,
                url=outgoing.call_url,
                status_callback=outgoing.status_callback,
                status_callback_event=list(CALL_EVENTS),
                status_callback_method="POST",
                machine_detection="Enable",
                timeout=RING_SECONDS,
            )
        return str(call.sid)

    def find_previous(self, outgoing: Outgoing) -> str | None:
        """The earliest API-placed call between the same numbers created since the attempt
        started (less `CLOCK_SLACK`).

        A call carries no body or URL to recognise it by, so another voice delivery to the
        same person from the same number in that window (two messages at once) would be
        taken for this one: that delivery is then considered placed. The `initiated`
        status callback, whose URL names the delivery, is the exact answer when it comes.
        No `StartTime>` filter, for the reason given for SMS: a queued call has none yet.
        """
        with _twilio_errors():
            calls = self._client.calls.list(
                to=outgoing.to, from_=outgoing.from_number, limit=LOOKBACK
            )
        # outbound-api only: a <Dial> to the same on-call person (a patch-through) is
        # "outbound-dial". https://www.twilio.com/docs/voice/api/call-resource#call-direction
        return _earliest_since(outgoing, [c for c in calls if c.direction == "outbound-api"])


def _earliest_since(outgoing: Outgoing, candidates: Sequence[Any]) -> str | None:
    """The sid of the earliest Twilio resource created since the attempt began (less slack)."""
    since = outgoing.attempt_started - CLOCK_SLACK
    ours = [c for c in candidates if c.date_created is not None and c.date_created >= since]
    return str(min(ours, key=lambda c: c.date_created).sid) if ours else None


@contextlib.contextmanager
def _twilio_errors() -> Iterator[None]:
    """Translates what the twilio library raises into SendError subclasses."""
    try:
        yield
    except (TwilioException, requests.RequestException) as error:
        raise twilio_send_error(error) from error


def twilio_send_error(error: Exception) -> SendError:
    """Transient: 429, 5xx, 401 (credentials an operator will fix), timeouts and connection
    errors (the request may have arrived: ask find_previous). Permanent: other 4xx, such
    as 21211 invalid number, 21610 unsubscribed (STOP), 21614 not SMS-capable.
    https://www.twilio.com/docs/api/errors"""
    status: int | None = getattr(error, "status", None)
    code: int | None = getattr(error, "code", None)
    if status is not None:
        text = getattr(error, "msg", None) or getattr(error, "title", "") or ""
        message = f"Twilio {status} error {code}: {redact(text)}"
        if status in (401, 429) or status >= 500:
            return TransientSendError(message, code)
        return PermanentSendError(message, code)
    if isinstance(error, requests.Timeout):
        return TransientSendError(f"Twilio did not answer in time ({type(error).__name__})")
    if isinstance(error, requests.RequestException):
        return TransientSendError(f"Twilio unreachable ({type(error).__name__})")
    # Plain TwilioException: e.g. a list page that did not answer 200.
    return TransientSendError(f"Twilio error: {redact(str(error))}")


_PHONE = re.compile(r"\+?\d{7,15}")


def redact(text: str) -> str:
    """Error texts end up in logs: keep only the last four digits of a phone number."""
    return _PHONE.sub(lambda match: "…" + match.group()[-4:], text)


# --- SMTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to reach the SMTP server, from `NIGHTDESK_SMTP_URL`."""

    host: str
    port: int
    tls: bool = False  # smtps://: TLS from the first byte
    starttls: bool = False  # ?starttls=1: upgrade a plain connection
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpServer:
    """`smtp://host:port`, `smtp://user:pass@host:port?starttls=1` or `smtps://host`."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"not an smtp:// or smtps:// URL: {parts.scheme}://{parts.hostname}")
    tls = parts.scheme == "smtps"
    flag = parse_qs(parts.query).get("starttls", ["0"])[-1].lower()
    starttls = flag in ("1", "true", "yes")
    if tls and starttls:
        raise ValueError("smtps:// is TLS already: drop ?starttls")
    return SmtpServer(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        tls=tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+$")


class SmtpEmailSender:
    """Email through an SMTP server (stdlib `smtplib`: the dispatcher's workers are threads)."""

    def __init__(self, smtp_url: str, from_address: str, timeout: float = 10) -> None:
        self._server = parse_smtp_url(smtp_url)
        self._from = from_address
        self._envelope_from = parseaddr(from_address)[1]
        self._domain = self._envelope_from.rpartition("@")[2] or "localhost"
        self._timeout = timeout

    def message_id(self, delivery_id: int) -> str:
        """Stable per delivery, so a resent email carries the same id as the first."""
        return f"<nightdesk-delivery-{delivery_id}@{self._domain}>"

    def send(self, outgoing: Outgoing) -> str:
        """Sends the email and returns its Message-ID."""
        if not _ADDRESS.match(outgoing.to):
            raise PermanentSendError(f"not an email address: {outgoing.to!r}")
        try:
            message = self.compose(outgoing)
        except ValueError as error:  # a header with a line break, say
            raise PermanentSendError(f"cannot compose the email: {error}") from error
        smtp = self._connect()
        try:
            smtp.send_message(message, from_addr=self._envelope_from, to_addrs=[outgoing.to])
        except (smtplib.SMTPException, OSError) as error:
            raise _smtp_send_error(error, outgoing.to) from error
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        return str(message["Message-ID"])

    def find_previous(self, outgoing: Outgoing) -> str | None:
        """Always None: SMTP cannot be asked what it accepted. A resend carries the same
        Message-ID, which lets some mail systems (Gmail among them) drop the duplicate;
        others will show the email twice."""
        return None

    def compose(self, outgoing: Outgoing) -> EmailMessage:
        """Plain text, plus an HTML alternative (multipart/alternative) when given."""
        message = EmailMessage()
        message["From"] = self._from
        message["To"] = outgoing.to
        message["Subject"] = outgoing.subject or f"Message {outgoing.ref}"
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = self.message_id(outgoing.delivery_id)
        message.set_content(outgoing.body)
        if outgoing.html is not None:
            message.add_alternative(outgoing.html, subtype="html")
        return message

    def _connect(self) -> smtplib.SMTP:
        """Connects, upgrades to TLS and logs in. Failures here are about the server's
        health or our setup, never this email, so they are all worth a retry."""
        server = self._server
        where = f"SMTP server {server.host}:{server.port}"
        try:
            if server.tls:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    server.host,
                    server.port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=self._timeout)
        except (smtplib.SMTPException, OSError) as error:
            raise TransientSendError(f"{where} unreachable: {error}", _smtp_code(error)) from error
        try:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username is not None:
                smtp.login(server.username, server.password or "")
        except (smtplib.SMTPException, OSError) as error:
            smtp.close()
            raise TransientSendError(f"{where}: {error}", _smtp_code(error)) from error
        return smtp


def _smtp_send_error(error: Exception, to: str) -> SendError:
    """By reply code: 5xx permanent (550 no such user), 4xx transient (451 try later).
    A connection lost during the send is transient, although the server may have the
    email already (then the Message-ID is the only guard)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code, reply = error.recipients.get(to, (None, b""))
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return _by_code(code, f"SMTP refused the recipient: {code} {text}")
    if isinstance(error, smtplib.SMTPNotSupportedError):  # e.g. a non-ASCII address
        return PermanentSendError(f"SMTP server cannot take this email: {error}")
    code = _smtp_code(error)
    return _by_code(code, f"SMTP send failed: {error}")


def _by_code(code: int | None, message: str) -> SendError:
    if code is not None and code >= 500:
        return PermanentSendError(message, code)
    return TransientSendError(message, code)


def _smtp_code(error: Exception) -> int | None:
    code = getattr(error, "smtp_code", None)
    return code if isinstance(code, int) and code > 0 else None


# --- wiring ------------------------------------------------------------------------------


def make_senders(settings: Settings) -> dict[Channel, Sender]:
    """The senders for every channel; SMS and voice share one Twilio client.

    Email comes from NIGHTDESK_EMAIL_FROM, by default nightdesk@ the public URL's host. Every
    sender gives up after NIGHTDESK_TWILIO_TIMEOUT, which a claim's lease outlasts.
    """
    client = make_twilio_client(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_api_base,
        timeout=settings.twilio_timeout,
    )
    host = urlsplit(settings.public_url).hostname or "localhost"
    return {
        Channel.sms: TwilioSmsSender(client),
        Channel.voice: TwilioVoiceSender(client),
        Channel.email: SmtpEmailSender(
            settings.smtp_url, settings.email_from or f"nightdesk@{host}", settings.twilio_timeout
        ),
    }
