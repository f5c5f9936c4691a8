"""Where a webhook goes: its URL's host resolved once, checked, and the request pinned to the
address that was checked, so a name re-pointed between the check and the connection (DNS
rebinding) still can't reach a private address. The rules are `failures.py`'s (pure)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.webhooks.failures import IPAddress, addresses_problem, url_problem

Resolver = Callable[[str, int], list[IPAddress]]


class RefusedUrlError(ValueError):
    """A URL webhooks may not go to, with the reason for the client."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (blocking: call it off the loop)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found}
    return sorted(addresses, key=lambda a: (a.version, int(a)))


@dataclass(frozen=True)
class Destination:
    """A checked URL, and the address to connect to for it."""

    url: str
    host: str
    address: IPAddress

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """(URL with the address in place of the host, the Host header, httpx extensions):
        the request connects to the checked address, while TLS still verifies the host's
        certificate by name (`sni_hostname`)."""
        parts = urlsplit(self.url)
        at = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{at}:{parts.port}" if parts.port else at
        host = f"{self.host}:{parts.port}" if parts.port else self.host
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return urlunsplit(parts._replace(netloc=netloc)), {"host": host}, extensions


def destination(url: str, *, local_ok: bool, resolver: Resolver = resolve) -> Destination:
    """The URL checked and resolved, or RefusedUrlError saying why it can't be used."""
    if problem := url_problem(url, local_ok=local_ok):
        raise RefusedUrlError(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolver(host, port)
    if problem := addresses_problem(host, addresses, local_ok=local_ok):
        raise RefusedUrlError(problem)
    return Destination(url, host, addresses[0])
