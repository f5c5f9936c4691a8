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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_problem(url: str, *, local_ok: bool) -> str | None:
    """Why this URL can't receive webhooks, or None: HTTPS to a public address. `local_ok`
    (development and the sandbox only): plain HTTP to this machine too, for trying it out and
    for tests' receivers. A host name is checked again once resolved (`addresses_problem`)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"not a valid port in {url!r}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"not an https:// URL: {url!r}"
    if parts.username or parts.password:
        return "put no credentials in the URL: receivers check our signature instead"
    literal = _literal(parts.hostname)
    local = parts.hostname == "localhost" or (literal is not None and _local(literal))
    if parts.scheme == "http" and not (local_ok and local):
        return "use https://"
    if literal is not None:
        return addresses_problem(parts.hostname, [literal], local_ok=local_ok)
    if parts.hostname == "localhost" and not local_ok:
        return addresses_problem(
            parts.hostname, [ipaddress.ip_address("127.0.0.1")], local_ok=False
        )
    return None


def addresses_problem(host: str, addresses: list[IPAddress], *, local_ok: bool) -> str | None:
    """Why a host that resolves to `addresses` can't receive webhooks, or None: every one of
    them must be a public address, or it could reach into a private network (ours, or the
    cloud's metadata service). Checked at registration and before every delivery, so a name
    that later resolves somewhere private (DNS rebinding) is refused too."""
    if not addresses:
        return f"{host} does not resolve to any address"
    for address in addresses:
        if _local(address):
            if not local_ok:
                return f"{host} is this machine ({address}): use a public https:// URL"
        elif not _public(address):
            return (
                f"{host} resolves to {address}, a private, link-local or reserved address: "
                "webhooks go to public addresses only"
            )
    return None


def _unmapped(address: IPAddress) -> IPAddress:
    """::ffff:10.0.0.1 is 10.0.0.1."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _local(address: IPAddress) -> bool:
    return _unmapped(address).is_loopback


def _public(address: IPAddress) -> bool:
    plain = _unmapped(address)
    return plain.is_global and not plain.is_multicast


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


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
