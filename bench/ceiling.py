"""The ceiling: the least a FastAPI webhook can do (read the form, answer TwiML), for comparison.

It reads the form with `await request.form()` when python-multipart is installed; Nightdesk does
not depend on it, so otherwise with the standard library's `parse_qsl` over the body
(cheaper: a higher ceiling). The JSON results say which (`ceiling_form_parser`).

It runs on the same uvicorn (uvloop, httptools, one worker) and takes the same requests as the real
service, so the real service's requests/s are reported as a fraction of this one's.
Run by bench.webhooks as: python -m uvicorn bench.ceiling:app --loop uvloop --http httptools
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response

FORM_PARSER = "request.form()" if find_spec("python_multipart") else "parse_qsl"

# A typical turn's document: a menu Gather with its prompt and the Redirect that follows it.
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-GB" voice="Polly.Amy">'
    "Thank you for calling Acme Plumbing and Heating. Our office is closed at the moment, but our "
    'engineers are on call for emergencies.</Say><Gather action="http://127.0.0.1/twilio/voice/'
    'step?turn=1" finishOnKey="#" hints="emergency,leak,urgent,heating,water,message,other,'
    'routine" input="dtmf speech" language="en-GB" method="POST" numDigits="1" '
    'speechTimeout="auto" timeout="6"><Say language="en-GB" voice="Polly.Amy">If you have an '
    "emergency, such as a leak, no heating or no water, press 1 or say emergency. For anything "
    "else, press 2 or say message, and we'll call you back when the office opens.</Say></Gather>"
    '<Redirect method="POST">http://127.0.0.1/twilio/voice/step?turn=1&amp;silence=1</Redirect>'
    "</Response>"
)

app = FastAPI()


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/twilio/voice")
@app.post("/twilio/voice/step")
async def turn(request: Request) -> Response:
    """Parse the form (as every webhook must) and answer constant TwiML."""
    await form(request)
    return Response(TWIML, media_type="application/xml")


@app.post("/twilio/voice/status", status_code=204)
async def status(request: Request) -> None:
    await form(request)


async def form(request: Request) -> Any:
    if FORM_PARSER == "request.form()":
        return await request.form()
    return dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
