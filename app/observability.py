"""Structured logs (one JSON object a line) and Prometheus metrics.

Logs carry call and message ids, never a full phone number or a secret: numbers are masked
to their country code and last three digits wherever they appear in a log record, tracebacks
included. Logging never raises for a field's name: see SafeLogger and log_safely.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from logging import _ArgsType, _SysExcInfoType  # typeshed's names for makeRecord's types

REGISTRY = CollectorRegistry()
WEBHOOK_SECONDS = Histogram(
    "nightdesk_webhook_seconds",
    "Time to answer an HTTP request, by route",
    ["route"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
    registry=REGISTRY,
)
CALLS_STARTED = Counter(
    "nightdesk_calls_total", "Calls answered, by client", ["client"], registry=REGISTRY
)
MESSAGES_SAVED = Counter(
    "nightdesk_messages_total", "Messages saved, by outcome", ["outcome"], registry=REGISTRY
)
WEBHOOKS_REJECTED = Counter(
    "nightdesk_webhooks_rejected_total", "Webhooks refused, by status", ["status"],
    registry=REGISTRY,
)  # fmt: skip

ALL_CLIENTS = "all"  # the `client` label when NIGHTDESK_METRICS_CLIENT_LABELS is false
_client_labels = True


def configure_metrics(*, client_labels: bool) -> None:
    """Whether metrics name clients (their slugs) or count them all under client="all": the
    metrics system may be run by someone who shouldn't learn who the clients are."""
    global _client_labels
    _client_labels = client_labels


def client_label(slug: str) -> str:
    """The `client` label for a client's metrics: its slug, or "all" (see configure_metrics)."""
    return slug if _client_labels else ALL_CLIENTS


# A whole phone number (not digits inside a CallSid): +E.164, or a long run of digits.
_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\d{7,15}(?![A-Za-z0-9])")
# The names a log call's `extra` may not use: the standard Logger raises KeyError for them.
RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class SafeLogger(logging.Logger):
    """A Logger whose `extra` fields can't clash with the LogRecord's own attributes: `module`,
    `name`, `msg`... are logged as `module_`, `name_`..., where the standard Logger raises
    KeyError, and a log call in an `except` would turn one failure into another.

    Every logger the app creates is one (`app/__init__.py` makes it the logger class)."""

    def makeRecord(  # noqa: N802 - overrides logging.Logger.makeRecord
        self,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: _ArgsType,
        exc_info: _SysExcInfoType | None,
        func: str | None = None,
        extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        extra = _without_reserved(extra) if extra else extra
        return super().makeRecord(name, level, fn, lno, msg, args, exc_info, func, extra, sinfo)


def _without_reserved(fields: Mapping[str, object]) -> Mapping[str, object]:
    """The fields, any reserved name given a trailing underscore (two if that is taken, ...)."""
    if RESERVED.isdisjoint(fields):
        return fields
    renamed: dict[str, object] = {}
    for key, value in fields.items():
        name = key
        while name in RESERVED or name in renamed or (name != key and name in fields):
            name += "_"
        renamed[name] = value
    return renamed


def log_safely(
    logger: logging.Logger, level: int, event: str, /, *, exc_info: bool = False, **fields: object
) -> None:
    """Log an event, and never raise: for loops that must not stop because logging failed (a
    handler that raises, a field that won't format). A failure is noted on stderr if it can be."""
    try:
        logger.log(level, event, exc_info=exc_info, extra=fields)
    except Exception:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"nightdesk: logging {event} failed\n")


def mask_number(number: str) -> str:
    """+447700900123 -> +44*******123: enough to tell calls apart, not enough to dial."""
    digits = number.replace(" ", "")
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 6) + digits[-3:]


def _scrub(value: Any) -> Any:
    """The value with every phone number in it masked, in strings nested in lists and dicts too."""
    if isinstance(value, str):
        return _PHONE.sub(lambda m: mask_number(m.group(0)), value)
    if isinstance(value, Mapping):
        return {_scrub(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def _scrubbed_str(value: object) -> str:
    """How json.dumps writes what it can't encode: as its str(), numbers masked."""
    text: str = _scrub(str(value))
    return text


class JsonFormatter(logging.Formatter):
    """One event per line: time, level, logger, event name, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in RESERVED and not key.startswith("_"):
                while key in entry:  # an extra field called "event" doesn't replace the event
                    key += "_"
                entry[key] = _scrub(value)
        # Tracebacks carry values too: an SQL statement's parameters, a number in a message.
        if record.exc_info:
            entry["error"] = _scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = _scrub(self.formatStack(record.stack_info))
        return json.dumps(entry, default=_scrubbed_str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger through the JSON formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print query strings, which may carry phone numbers.
    logging.getLogger("uvicorn.access").disabled = True
    # The twilio library logs every request and its headers at INFO, and httpx every request's
    # URL (query strings too): the status callbacks the demo's sandbox sends drowned its output.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # aiosmtpd (the development email sandbox) logs every connection at INFO as "mail.log".
    logging.getLogger("mail.log").setLevel(logging.WARNING)


class LatencyMiddleware:
    """Times every request into WEBHOOK_SECONDS, labelled by its route's path template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            note_request(route, status, time.perf_counter() - started)


def note_request(route: str, status: int, seconds: float) -> None:
    """Count a request answered: its time by route, and Twilio webhooks refused (400, 403)."""
    _latency(route).observe(seconds)
    if status in (400, 403) and route.startswith("/twilio"):
        WEBHOOKS_REJECTED.labels(status=str(status)).inc()


@cache  # one a route template: a few dozen
def _latency(route: str) -> Histogram:
    return WEBHOOK_SECONDS.labels(route=route)
