"""Who may see the sandbox page without signing in: pure, from what the request says about itself.

The page shows what the sandbox sent: callers' names, numbers and messages. On a developer's
own machine (development, from loopback, asked for by a loopback name, with no proxy in
between) anyone at the keyboard may see it; everywhere else (`NIGHTDESK_SANDBOX=on` on a
shared staging server, a proxy on the same host) only signed-in staff may.
"""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import ip_address

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
# A proxy in front makes every request come from loopback; these headers give it away.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def open_without_sign_in(
    environment: str, client_host: str | None, headers: Mapping[str, str]
) -> bool:
    """True for a developer's own browser on their own machine in development.

    The Host header must name loopback too: a page on another site whose name resolves to
    127.0.0.1 (DNS rebinding) would otherwise read the sandbox from the developer's browser.
    """
    if environment != "development" or not _is_loopback(client_host):
        return False
    if any(name in headers for name in PROXY_HEADERS):
        return False
    host = headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in LOOPBACK_NAMES


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ip_address(host).is_loopback
    except ValueError:
        return False
