"""When to retry a webhook a receiver refused, when to pause its URL, and what the client is
told. Pure.

The retry schedule is the one the Standard Webhooks spec suggests: after the first attempt,
5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours and 10 hours; about 27 hours in
all, so a URL that refuses everything is paused (after a day) before its oldest event is given up.
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

RETRY_AFTER = tuple(
    dt.timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
)
PAUSE_AFTER = dt.timedelta(days=1)
EVENTS = ("message.taken", "message.acknowledged", "message.called_back", "message.closed")


@dataclass(frozen=True)
class AfterFailure:
    retry_at: dt.datetime | None  # None: this event is given up
    pause: bool  # the URL has failed for a day: stop sending to it until it is resumed


def after_failure(attempts: int, failing_since: dt.datetime, now: dt.datetime) -> AfterFailure:
    """What follows the `attempts`-th failed attempt at an event, the URL failing since then."""
    delay = RETRY_AFTER[attempts - 1] if attempts <= len(RETRY_AFTER) else None
    return AfterFailure(now + delay if delay else None, now - failing_since >= PAUSE_AFTER)


def delivered(status: int) -> bool:
    """Any 2xx is success; redirects are not followed, so a 3xx is a failure, as the spec says."""
    return 200 <= status < 300


def url_problem(url: str) -> str | None:
    """Why this URL can't receive webhooks, or None: HTTPS, or plain HTTP to this machine only
    (for trying it out and for tests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"not an https:// URL: {url!r}"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "use https:// (plain http:// only to this machine, for trying it out)"
    if parts.username or parts.password:
        return "put no credentials in the URL: receivers check our signature instead"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def paused_notice(client: str, url: str, since: dt.datetime, error: str | None) -> tuple[str, str]:
    """(subject, text) of the email telling the client its URL is paused."""
    subject = f"{client}: Nightdesk has paused a webhook that kept failing"
    text = (
        f"Nightdesk could not deliver events to {url} since "
        f"{since:%Y-%m-%d %H:%M} UTC"
        + (f" (last error: {error})" if error else "")
        + ".\n\nWe have paused it, and keep the events it missed. Once your system is taking "
        "them again, ask us to resume it (nightdesk webhooks resume) and they will follow.\n"
    )
    return subject, text
