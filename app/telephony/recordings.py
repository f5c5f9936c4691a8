"""Playing a caller's recording through Nightdesk: fetched from Twilio with the account's
credentials and streamed on, so people never see (or need) Twilio's URL.

Twilio serves a recording's audio at its RecordingUrl + `.mp3`, behind HTTP basic auth when the
account enforces it: https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from app.settings import Settings
from app.telephony.rest import is_twilio_url, rebase

log = logging.getLogger("nightdesk.inbox")
CHUNK = 64 * 1024


class RecordingUnavailableError(Exception):
    """Twilio did not hand the recording over (gone, refused, unreachable); the message says why."""


async def stream_recording(settings: Settings, recording_url: str) -> StreamingResponse:
    """The recording's audio as a response that streams it from Twilio as it arrives."""
    if not is_twilio_url(recording_url):  # the account's credentials go to Twilio only
        raise RecordingUnavailableError("the recording is not stored at Twilio")
    url = rebase(recording_url + ".mp3", settings.twilio_api_base)
    client = httpx.AsyncClient(
        auth=(settings.twilio_account_sid, settings.twilio_auth_token),
        timeout=settings.twilio_timeout,
        # Twilio may redirect to a signed storage URL; httpx drops the credentials when a
        # redirect leaves the host they were for.
        follow_redirects=True,
    )
    try:
        response = await client.send(client.build_request("GET", url), stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        log.warning("recording_unreachable", extra={"error": type(exc).__name__})
        raise RecordingUnavailableError("Twilio could not be reached") from None
    if response.status_code != 200:
        await response.aclose()
        await client.aclose()
        log.warning("recording_refused", extra={"status": response.status_code})
        raise RecordingUnavailableError(f"Twilio answered {response.status_code}")

    async def close() -> None:
        await response.aclose()
        await client.aclose()

    headers = {"Cache-Control": "private, no-store"}
    for passed_on in ("Content-Length", "Content-Encoding"):  # the bytes go on as they came
        if passed_on in response.headers:
            headers[passed_on] = response.headers[passed_on]
    return StreamingResponse(
        _chunks(response),
        media_type=response.headers.get("content-type", "audio/mpeg"),
        headers=headers,
        background=BackgroundTask(close),
    )


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_raw(CHUNK):
        yield chunk
