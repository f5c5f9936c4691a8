"""`/sandbox`: what the development sandbox sent (texts, calls, emails), for trying Nightdesk.

The routes exist only while a sandbox runs (404 otherwise, so production never shows them) and
are for staff, or for anyone on the developer's own machine (`access.py`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.accounts.deps import MaybeSignedIn, SignInRequiredError, client_address
from app.sandbox_page.access import open_without_sign_in
from app.sandbox_page.views import email_view, sent_rows
from app.settings import Settings
from app.telephony.sandbox.services import Sandboxes
from app.web.pages import render

router = APIRouter(prefix="/sandbox", include_in_schema=False)

# The email's own HTML is shown in <iframe sandbox srcdoc>, which inherits this policy: no
# script runs, nothing is fetched from another host (no tracking pixels), no form is posted.
EMAIL_POLICY = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


async def running_sandbox(request: Request, principal: MaybeSignedIn) -> Sandboxes:
    """The running sandbox, if this visitor may see it: 404 when no sandbox runs, then
    sign-in for anyone but the developer on their own machine, and staff only."""
    sandboxes: Sandboxes | None = getattr(request.app.state, "sandboxes", None)
    if sandboxes is None or not sandboxes.running:
        raise HTTPException(404, "No sandbox is running.")
    settings: Settings = request.app.state.settings
    if open_without_sign_in(settings.environment, client_address(request), request.headers):
        return sandboxes
    if principal is None:
        raise SignInRequiredError(request.url.path)
    if not principal.is_staff:
        raise HTTPException(403, "This page is for Nightdesk's staff.")
    return sandboxes


SandboxDep = Annotated[Sandboxes, Depends(running_sandbox)]


@router.get("", response_class=HTMLResponse)
async def sandbox_page(request: Request, sandboxes: SandboxDep) -> HTMLResponse:
    """Everything the sandbox sent, newest first."""
    twilio, mailbox = sandboxes.twilio, sandboxes.mailbox
    rows = sent_rows(
        twilio.messages if twilio else [],
        twilio.calls if twilio else [],
        mailbox.arrivals if mailbox else [],
    )
    return render(request, "sandbox/sent.html", rows=rows, twilio=twilio, mailbox=mailbox)


@router.get("/emails/{number}", response_class=HTMLResponse)
async def sandbox_email(request: Request, number: int, sandboxes: SandboxDep) -> HTMLResponse:
    """One email: its plain text, and its HTML in a frame where nothing of it can run."""
    email = email_view(sandboxes.mailbox.arrivals if sandboxes.mailbox else [], number)
    if email is None:
        raise HTTPException(404, "No such email in the sandbox.")
    page = render(request, "sandbox/email.html", email=email)
    page.headers["Content-Security-Policy"] = EMAIL_POLICY
    return page
