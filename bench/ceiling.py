"""The ceilings: the least a FastAPI webhook can do (read the form, answer TwiML), for comparison.

- `app`: the idiomatic endpoint, the one ratios are taken against. It declares the form fields
  Twilio sends as `Form()` parameters (`Annotated[str | None, Form(alias=...)] = None`), as a
  FastAPI app written from the documentation would, and answers a constant TwiML document.
- `request_form_app`: the cheaper one measured before, `await request.form()` and nothing
  declared; reported beside the first.

Both need python-multipart (a dev dependency: `uv sync`). They run on the same uvicorn as the
real service (uvloop, httptools, one worker) and take the same requests, so the real service's
requests/s are reported as a fraction of the first one's. Run by bench.webhooks as:
python -m uvicorn bench.ceiling:app --loop uvloop --http httptools
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Form, Request, Response

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
async def voice(
    account_sid: Annotated[str | None, Form(alias="AccountSid")] = None,
    api_version: Annotated[str | None, Form(alias="ApiVersion")] = None,
    call_sid: Annotated[str | None, Form(alias="CallSid")] = None,
    call_status: Annotated[str | None, Form(alias="CallStatus")] = None,
    direction: Annotated[str | None, Form(alias="Direction")] = None,
    from_: Annotated[str | None, Form(alias="From")] = None,
    to: Annotated[str | None, Form(alias="To")] = None,
    caller: Annotated[str | None, Form(alias="Caller")] = None,
    called: Annotated[str | None, Form(alias="Called")] = None,
    from_country: Annotated[str | None, Form(alias="FromCountry")] = None,
    to_country: Annotated[str | None, Form(alias="ToCountry")] = None,
) -> Response:
    """A call comes in: constant TwiML."""
    return Response(TWIML, media_type="application/xml")


@app.post("/twilio/voice/step")
async def step(
    turn: int | None = None,
    account_sid: Annotated[str | None, Form(alias="AccountSid")] = None,
    api_version: Annotated[str | None, Form(alias="ApiVersion")] = None,
    call_sid: Annotated[str | None, Form(alias="CallSid")] = None,
    call_status: Annotated[str | None, Form(alias="CallStatus")] = None,
    direction: Annotated[str | None, Form(alias="Direction")] = None,
    from_: Annotated[str | None, Form(alias="From")] = None,
    to: Annotated[str | None, Form(alias="To")] = None,
    caller: Annotated[str | None, Form(alias="Caller")] = None,
    called: Annotated[str | None, Form(alias="Called")] = None,
    from_country: Annotated[str | None, Form(alias="FromCountry")] = None,
    to_country: Annotated[str | None, Form(alias="ToCountry")] = None,
    digits: Annotated[str | None, Form(alias="Digits")] = None,
    speech_result: Annotated[str | None, Form(alias="SpeechResult")] = None,
    confidence: Annotated[str | None, Form(alias="Confidence")] = None,
    dial_call_status: Annotated[str | None, Form(alias="DialCallStatus")] = None,
    dial_call_duration: Annotated[str | None, Form(alias="DialCallDuration")] = None,
    recording_url: Annotated[str | None, Form(alias="RecordingUrl")] = None,
    recording_sid: Annotated[str | None, Form(alias="RecordingSid")] = None,
    recording_duration: Annotated[str | None, Form(alias="RecordingDuration")] = None,
) -> Response:
    """The caller's answer to a Gather, Dial or Record: constant TwiML."""
    return Response(TWIML, media_type="application/xml")


@app.post("/twilio/voice/status", status_code=204)
async def status(
    account_sid: Annotated[str | None, Form(alias="AccountSid")] = None,
    api_version: Annotated[str | None, Form(alias="ApiVersion")] = None,
    call_sid: Annotated[str | None, Form(alias="CallSid")] = None,
    call_status: Annotated[str | None, Form(alias="CallStatus")] = None,
    direction: Annotated[str | None, Form(alias="Direction")] = None,
    from_: Annotated[str | None, Form(alias="From")] = None,
    to: Annotated[str | None, Form(alias="To")] = None,
    caller: Annotated[str | None, Form(alias="Caller")] = None,
    called: Annotated[str | None, Form(alias="Called")] = None,
    from_country: Annotated[str | None, Form(alias="FromCountry")] = None,
    to_country: Annotated[str | None, Form(alias="ToCountry")] = None,
    call_duration: Annotated[str | None, Form(alias="CallDuration")] = None,
) -> None:
    """The call's status callback: nothing to say."""


request_form_app = FastAPI()


@request_form_app.get("/healthz")
async def healthz_too() -> dict[str, str]:
    return {"status": "ok"}


@request_form_app.post("/twilio/voice")
@request_form_app.post("/twilio/voice/step")
async def turn(request: Request) -> Response:
    """Parse the form (as every webhook must) and answer constant TwiML."""
    await request.form()
    return Response(TWIML, media_type="application/xml")


@request_form_app.post("/twilio/voice/status", status_code=204)
async def status_too(request: Request) -> None:
    await request.form()
