"""Twilio's webhooks: the `TwilioForm` dependency checks every request really comes from Twilio.

Twilio signs the full URL it called plus the POSTed form (HMAC-SHA1 with the auth token).
Behind a TLS-terminating proxy the app sees http://internal-host/..., so the URL to check is
NIGHTDESK_PUBLIC_URL + path + query. https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import hmac
import logging
from functools import lru_cache
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import Depends, HTTPException, Request
from twilio.request_validator import RequestValidator

log = logging.getLogger("nightdesk.telephony")


class BadWebhookError(ValueError):
    """A signed request that still doesn't say what we need: answered 400 with this reason."""


LARGEST_ID = 2**31 - 1  # the database's INTEGER: a larger id overflows it (500, not "no such")


def query_int(request: Request, name: str, default: int | None = None) -> int:
    """A whole number from the webhook URL's query (we wrote it there: an id, a turn, a count),
    from 0 to LARGEST_ID, or BadWebhookError."""
    value = query(request).get(name)
    if value is None and default is not None:
        return default
    # ASCII digits only: int() would also read " 7", "1_000" and "٧".
    if not value or len(value) > 10 or not (value.isascii() and value.isdigit()):
        raise BadWebhookError(f"the query parameter {name} must be a whole number")
    number = int(value)
    if number > LARGEST_ID:
        raise BadWebhookError(f"the query parameter {name} must be at most {LARGEST_ID}")
    return number


class TwilioSignatures:
    """Checks signatures with the current auth token, and a previous one while it is rotated."""

    def __init__(self, auth_token: str, previous_auth_token: str = "") -> None:
        self._validators = [RequestValidator(t) for t in (auth_token, previous_auth_token) if t]

    def is_valid(self, url: str, params: dict[str, str], signature: str) -> bool:
        # Nearly every request is signed over exactly the URL we expect: check that first, once.
        # validate() also tries the URL with and without its port, computing the HMAC twice.
        for validator in self._validators:
            expected = validator.compute_signature(url, params).encode()
            if hmac.compare_digest(expected, signature.encode()):
                return True
        return any(v.validate(url, params, signature) for v in self._validators)


def public_base(request: Request) -> str:
    """The base URL Twilio reaches us at: NIGHTDESK_PUBLIC_URL, else the one this request used.

    Worked out once per request (the signature check and the TwiML's URLs both need it)."""
    base: str | None = request.scope.get(_BASE)
    if base is None:
        configured: str = request.app.state.settings.public_url
        base = configured.rstrip("/") or str(request.base_url).rstrip("/")
        request.scope[_BASE] = base
    return base


_BASE = "nightdesk.public_base"


def public_url(request: Request) -> str:
    """The URL Twilio called: the configured public base, this path and this query."""
    query = request.scope["query_string"].decode("latin-1")
    return f"{public_base(request)}{request.scope['path']}" + (f"?{query}" if query else "")


class WebhookForm(dict[str, str]):
    """A webhook's form fields, one value a name.

    getall() is the first thing twilio's RequestValidator asks of the fields (werkzeug's
    MultiDict has it); for a plain dict it raised and caught AttributeError twice per field,
    a tenth of the signature check's cost."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def query(request: Request) -> dict[str, str]:
    """The webhook URL's query, parsed once per request, as parse_form parses a form (Starlette's
    query_params cost twice as much, in a multi-valued dict no webhook needs)."""
    parsed: dict[str, str] | None = request.scope.get(_QUERY)
    if parsed is None:
        parsed = request.scope[_QUERY] = parse_form(request.scope["query_string"].decode("latin-1"))
    return parsed


_QUERY = "nightdesk.query"


def parse_form(encoded: str) -> WebhookForm:
    """application/x-www-form-urlencoded, as parse_qsl reads it, in a fifth of the time: most of
    Twilio's fields need no unquoting, and those that do (numbers: %2B44...) come again and
    again, so their unquoting is remembered."""
    fields = WebhookForm()
    for pair in encoded.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:
            name, value = _unquote(name), _unquote(value)
        fields[name] = value
    return fields


def _unquote(text: str) -> str:
    # Short ones only: a remembered speech result or transcription would just take memory.
    return _unquote_remembered(text) if len(text) <= 48 else unquote_plus(text)


@lru_cache(maxsize=4096)
def _unquote_remembered(text: str) -> str:
    return unquote_plus(text)


async def verified_form(request: Request) -> WebhookForm:
    """The webhook's form fields, once its X-Twilio-Signature has been checked (403 if not)."""
    body = await request.body()
    try:
        params = parse_form(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise HTTPException(400, "the webhook body is not form-encoded UTF-8") from None
    signature = request.headers.get("x-twilio-signature", "")
    url = public_url(request)
    signatures: TwilioSignatures = request.app.state.signatures
    if not signature or not signatures.is_valid(url, params, signature):
        log.warning(
            "webhook_forbidden",
            extra={
                "path": request.url.path,
                "reason": "bad signature" if signature else "unsigned",
            },
        )
        raise HTTPException(403, "X-Twilio-Signature does not match this request")
    return params


TwilioForm = Annotated[WebhookForm, Depends(verified_form)]
"""A Twilio webhook's form fields, signature checked (403 when it fails)."""
