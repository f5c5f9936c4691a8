"""Who is asking, as FastAPI dependencies: `user: StaffUser`, `user: ClientUser`, `ApiCaller`.

Pages answer a signed-out visitor with a redirect to /login; the API with 401. Every form a
signed-in page POSTs carries the session's CSRF token, checked by `CsrfChecked`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from app.accounts.models import Role
from app.accounts.service import Principal, principal_for_api_key, principal_for_session
from app.deps import DatabaseDep, Now

SESSION_COOKIE = "nightdesk_session"
LOGIN_CSRF_COOKIE = "nightdesk_login_csrf"


class SignInRequiredError(Exception):
    """A page for signed-in people only: send the visitor to /login, then back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def sign_in_redirect(exc: SignInRequiredError) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_path)}", status_code=303)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def signed_in(request: Request, database: DatabaseDep, now: Now) -> Principal | None:
    """The session cookie's person, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    principal = await database.run(lambda session: principal_for_session(session, token, now))
    request.state.principal = principal
    return principal


MaybeSignedIn = Annotated[Principal | None, Depends(signed_in)]


def _page_for(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the signed-in person, if their role is one of `roles`."""

    async def dependency(request: Request, principal: MaybeSignedIn) -> Principal:
        if principal is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequiredError(path)
        if principal.role not in roles:
            raise HTTPException(403, "This page is not for your account.")
        return principal

    return dependency


StaffUser = Annotated[Principal, Depends(_page_for(Role.admin, Role.supervisor, Role.pa))]
SupervisorUser = Annotated[Principal, Depends(_page_for(Role.admin, Role.supervisor))]
ClientUser = Annotated[Principal, Depends(_page_for(Role.client))]


async def api_caller(
    request: Request, database: DatabaseDep, now: Now, principal: MaybeSignedIn
) -> Principal:
    """A bearer API key, or a signed-in session; 401 otherwise."""
    authorization = request.headers.get("authorization", "")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() == "bearer" and key:
        found = await database.run(lambda session: principal_for_api_key(session, key, now))
        if found is None:
            raise HTTPException(401, "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
        return found
    if principal is None:
        raise HTTPException(
            401, "send Authorization: Bearer <API key>", {"WWW-Authenticate": "Bearer"}
        )
    return principal


ApiCaller = Annotated[Principal, Depends(api_caller)]


async def csrf_checked(principal: MaybeSignedIn, csrf_token: Annotated[str, Form()] = "") -> None:
    """The form came from one of our pages in this session, not from another site."""
    expected = principal.csrf_token if principal else None
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise HTTPException(403, "This form has expired: go back, reload the page and try again.")


CsrfChecked = Depends(csrf_checked)
