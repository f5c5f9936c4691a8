"""Signing webhooks exactly as Twilio does, so the service's real signature check is exercised.

Twilio signs the full URL it requested (the service's public URL, with the query) followed by the
sorted POST parameters: https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

SIGNATURE_HEADER = "X-Twilio-Signature"


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """The `X-Twilio-Signature` Twilio would send for a request to `url` with these form params."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(params))
    return signature


def signed_request(
    client: httpx.Client,
    public_url: str,
    path: str,
    params: Mapping[str, str],
    auth_token: str,
    method: str = "POST",
) -> httpx.Response:
    """Send a webhook to `client` as Twilio would send it to `public_url` + `path`.

    With GET, Twilio puts the parameters in the query string and signs the URL alone.
    """
    body: Mapping[str, str] = params
    if method.upper() == "GET":
        if params:
            path += ("&" if "?" in path else "?") + urlencode(params)
        body = {}
    headers = {SIGNATURE_HEADER: sign(public_url.rstrip("/") + path, body, auth_token)}
    if method.upper() == "GET":
        return client.get(path, headers=headers)
    return client.post(path, data=dict(body), headers=headers)


def signed_post(
    client: httpx.Client,
    public_url: str,
    path: str,
    params: Mapping[str, str],
    auth_token: str,
) -> httpx.Response:
    """A signed form-encoded POST, for tests that send hand-made webhooks (pass a wrong token to
    forge one)."""
    return signed_request(client, public_url, path, params, auth_token)
