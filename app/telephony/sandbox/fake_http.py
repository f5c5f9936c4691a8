"""The fake Twilio's HTTP edge: what every request goes through before a resource sees it.
It records the request, checks basic auth, applies scripted faults (errors, slow answers)
and renders errors in Twilio's JSON shape."""

from __future__ import annotations

import asyncio
import base64
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.telephony.sandbox.fake_resources import ApiRequest, TwilioApiError, http_error

Form = ImmutableMultiDict[str, str]
Handler = Callable[[dict[str, str], Form], tuple[int, dict[str, Any] | bytes]]
"""(path parameters, form) -> (status, JSON body, or audio bytes for a recording's media);
raises TwilioApiError. Runs under the lock."""


@dataclass
class Fault:
    """The next `remaining` matching requests answer `status` (None: normally) after `delay`
    seconds, or as soon as `release` is set. A request matches when its path contains
    `path_contains` and it is sent `to` that number (when given); with `every`, only every
    `every`-th matching request is taken (`seen` counts them)."""

    remaining: int
    status: int | None
    delay: float
    retry_after: int | None
    path_contains: str | None
    to: str | None = None
    every: int = 1
    release: threading.Event | None = None
    seen: int = 0

    def matches(self, path: str, form: list[tuple[str, str]]) -> bool:
        return (self.path_contains or "") in path and (self.to is None or ("To", self.to) in form)


class FakeHttpEdge:
    """Request recording, auth and faults, shared by every fake endpoint."""

    def __init__(self, account_sid: str, auth_token: str, clock: Callable[[], datetime]):
        self.account_sid, self.auth_token, self._clock = account_sid, auth_token, clock
        self.stopping = threading.Event()  # set by stop(): ends scripted delays early
        self._lock = threading.RLock()
        self._requests: list[ApiRequest] = []
        self._faults: list[Fault] = []

    def route(self, method: str, path: str, handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self._answer(request, handler)

        return Route(path, endpoint, methods=method.split(","))

    def not_found_route(self) -> Route:
        """Anything else answers Twilio's 20404, after auth like everything else."""
        return self.route("GET,POST,PUT,DELETE", "/{path:path}", _not_found)

    async def _answer(self, request: Request, handler: Handler) -> Response:
        """Records the request, then answers: auth, scripted fault, then the handler.

        Query parameters (list filters) and the form body both reach the handler as `form`.
        A scripted failure waits before answering its error, and nothing is created; a
        scripted slow answer runs the handler first and waits after, as when Twilio
        accepted a message but its answer never reached the client in time.
        """
        form = parse_qsl(request.url.query, keep_blank_values=True)
        form += parse_qsl((await request.body()).decode(), keep_blank_values=True)
        entry = ApiRequest(request.method, request.url.path, form, self._clock())
        with self._lock:
            self._requests.append(entry)
        fault: Fault | None = None
        try:
            self._authenticate(request)
            fault = self._take_fault(entry.path, form)
            if fault is not None and fault.status is not None:
                await self._wait(fault)
                raise _scripted_error(fault)
            with self._lock:
                status, body = handler(dict(request.path_params), Form(form))
            response: Response = (
                Response(body, status, media_type="audio/mpeg")
                if isinstance(body, bytes)
                else JSONResponse(body, status)
            )
        except TwilioApiError as error:
            response = JSONResponse(error.body(), error.status, headers=error.headers)
        if fault is not None and fault.status is None:
            await self._wait(fault)
        with self._lock:
            entry.status = response.status_code
        return response

    async def _wait(self, fault: Fault) -> None:
        """Wait out a scripted delay, cut short by its release or by stop()."""
        deadline = time.monotonic() + fault.delay
        while (left := deadline - time.monotonic()) > 0 and not self.stopping.is_set():
            if fault.release is not None and fault.release.is_set():
                return
            await asyncio.sleep(min(left, 0.01))

    def _authenticate(self, request: Request) -> None:
        """Basic auth with the account sid and auth token; Twilio's 20003 otherwise."""
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            credentials = base64.b64decode(encoded, validate=True)
        except ValueError:
            credentials = b""
        expected = f"{self.account_sid}:{self.auth_token}".encode()
        if scheme.lower() != "basic" or not hmac.compare_digest(credentials, expected):
            error = TwilioApiError(401, 20003, "Authenticate")
            error.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            raise error
        if request.path_params.get("account_sid", self.account_sid) != self.account_sid:
            raise http_error(404)

    def _take_fault(self, path: str, form: list[tuple[str, str]]) -> Fault | None:
        """The first scripted fault this request falls to; every matching one counts it."""
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(path, form):
                    fault.seen += 1
                    if chosen is None and fault.seen % fault.every == 0:
                        fault.remaining -= 1
                        chosen = fault
        return chosen


def _not_found(path: dict[str, str], form: Form) -> tuple[int, dict[str, Any]]:
    raise http_error(404)


def _scripted_error(fault: Fault) -> TwilioApiError:
    error = http_error(fault.status or 500)
    if fault.retry_after is not None:
        error.headers["Retry-After"] = str(fault.retry_after)
    return error
