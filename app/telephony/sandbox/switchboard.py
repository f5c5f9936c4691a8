"""Twilio's side of a call that outlives one webhook: waiting in a queue until someone takes
the caller out, sitting in a conference until it ends, being hung up by the other side.

A simulated caller or PA (`SimulatedCaller`) asks the switchboard what happens to its call
meanwhile. The fake Twilio is one (in-process); `HttpSwitchboard` reaches the fake of another
process over HTTP (`nightdesk call --url` against `nightdesk demo`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class Redirected:
    """The call was sent new instructions: dequeued with a Url, or updated with Url or Twiml."""

    url: str | None = None
    method: str = "POST"
    twiml: str | None = None


@dataclass(frozen=True)
class Ended:
    """The call was ended from outside (hung up through the REST API, or by the test)."""


@dataclass(frozen=True)
class ConferenceEnded:
    """The conference the call was in has ended (a participant with endConferenceOnExit left)."""


LineEvent = Redirected | Ended | ConferenceEnded


class Switchboard(Protocol):
    def wait_in_queue(self, call_sid: str, queue_name: str, from_: str, to: str) -> str:
        """The call joins the named queue (created if need be); returns the queue's sid."""
        ...

    def leave_queue(self, call_sid: str) -> None:
        """The call leaves its queue by itself (<Leave>)."""
        ...

    def join_conference(self, call_sid: str, name: str, end_on_exit: bool) -> str:
        """The call joins the named conference (created if need be); returns its sid."""
        ...

    def next_event(self, call_sid: str, timeout: float) -> LineEvent | None:
        """What next happens to the call, or None when nothing did within `timeout` seconds."""
        ...

    def hang_up(self, call_sid: str) -> None:
        """The call's own party hangs up (nothing happens for a call already over)."""
        ...


class HttpSwitchboard:
    """The fake Twilio's switchboard in another process, over its sandbox HTTP endpoints."""

    def __init__(self, base_url: str, account_sid: str, auth_token: str) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/sandbox/Calls", auth=(account_sid, auth_token),
            timeout=httpx.Timeout(10.0, read=None),
        )  # fmt: skip

    def wait_in_queue(self, call_sid: str, queue_name: str, from_: str, to: str) -> str:
        data = {"QueueName": queue_name, "From": from_, "To": to}
        return str(self._post(f"/{call_sid}/Queue", data)["queue_sid"])

    def leave_queue(self, call_sid: str) -> None:
        self._post(f"/{call_sid}/Leave", {})

    def join_conference(self, call_sid: str, name: str, end_on_exit: bool) -> str:
        data = {"Name": name, "EndConferenceOnExit": "true" if end_on_exit else "false"}
        return str(self._post(f"/{call_sid}/Conference", data)["conference_sid"])

    def next_event(self, call_sid: str, timeout: float) -> LineEvent | None:
        response = self._http.get(f"/{call_sid}/Events", params={"Timeout": str(timeout)})
        response.raise_for_status()
        return event_from_json(response.json())

    def hang_up(self, call_sid: str) -> None:
        self._post(f"/{call_sid}/Hangup", {})

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, data: dict[str, str]) -> dict[str, object]:
        response = self._http.post(path, data=data)
        response.raise_for_status()
        body: dict[str, object] = response.json()
        return body


def event_to_json(event: LineEvent | None) -> dict[str, str | None]:
    match event:
        case Redirected(url=url, method=method, twiml=twiml):
            return {"event": "redirected", "url": url, "method": method, "twiml": twiml}
        case Ended():
            return {"event": "ended"}
        case ConferenceEnded():
            return {"event": "conference-ended"}
    return {"event": None}


def event_from_json(body: dict[str, str | None]) -> LineEvent | None:
    match body.get("event"):
        case "redirected":
            return Redirected(body.get("url"), body.get("method") or "POST", body.get("twiml"))
        case "ended":
            return Ended()
        case "conference-ended":
            return ConferenceEnded()
    return None
