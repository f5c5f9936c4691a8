"""The app's Twilio REST client, pointed at a configurable base URL so tests and the demo
reach the local fake (`app.telephony.sandbox.fake_twilio`) instead of api.twilio.com."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.settings import DEFAULT_TWILIO_API_BASE


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """Sends every Twilio request (api., messaging., any *.twilio.com host) to one base URL.

    The twilio library builds absolute URLs per product and region, so swapping the scheme
    and host here is the one place that catches them all; path and query are kept.
    """

    def __init__(self, api_base: str, timeout: float | None = None, connections: int = 32) -> None:
        super().__init__(timeout=timeout)
        # A connection kept for each of the dispatcher's concurrent senders (the library keeps
        # six), so a busy night reuses them instead of opening and discarding new ones.
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, HTTPAdapter(pool_maxsize=connections))
        self._api_base = api_base
        # requests reads the proxy and CA bundle settings from the environment afresh for every
        # request (some 1,600 Python calls, twice what the rest of a send costs). Nightdesk's
        # requests all go to api.twilio.com, or to the base that replaces it: they are read
        # once, here, for that host, as requests would read them.
        self.session.trust_env = False
        self.session.proxies = get_environ_proxies(self.rebase(DEFAULT_TWILIO_API_BASE + "/"))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle

    def rebase(self, url: str) -> str:
        """The URL the request really goes to: unchanged with Twilio's own base."""
        return rebase(url, self._api_base)

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """TwilioHttpClient.request, to the rebased URL."""
        return super().request(
            method,
            self.rebase(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def make_twilio_client(
    account_sid: str, auth_token: str, api_base: str, timeout: float = 10
) -> Client:
    """A sync twilio Client for the dispatcher's worker threads, sending to `api_base`."""
    http_client = BaseUrlHttpClient(api_base, timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


def rebase(url: str, api_base: str) -> str:
    """Where a request for Twilio's `url` really goes: to `api_base` instead of Twilio's host
    (the local fake, in tests and the demo); any other URL, or Twilio's own base, unchanged."""
    base = api_base.rstrip("/")
    parts = urlsplit(url)
    if base == DEFAULT_TWILIO_API_BASE or not is_twilio_url(url):
        return url
    to = urlsplit(base)
    return urlunsplit((to.scheme, to.netloc, to.path + parts.path, parts.query, ""))


def is_twilio_url(url: str) -> bool:
    """Whether `url` is on one of Twilio's HTTPS hosts: the only place the account's
    credentials may be sent."""
    parts = urlsplit(url)
    host = parts.hostname
    return (
        parts.scheme == "https"
        and host is not None
        and (host == "twilio.com" or host.endswith(".twilio.com"))
    )
