"""Signing in and out: /login (password), /login/link/{token} (one-time link), /logout."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.accounts.deps import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    CsrfChecked,
    MaybeSignedIn,
    client_address,
)
from app.accounts.models import STAFF, Role, User
from app.accounts.service import (
    SESSION_LIFETIME,
    Refused,
    link_is_valid,
    sign_in_with_link,
    sign_in_with_password,
    sign_out,
)
from app.accounts.tokens import new_token
from app.deps import DatabaseDep, Now
from app.telephony.signature import public_base
from app.web.pages import render

router = APIRouter(tags=["sign-in"], include_in_schema=False)

REFUSED = {
    Refused.wrong: "That email and password don't match an account. Check them and try again.",
    Refused.throttled: "Too many attempts. Wait a quarter of an hour, then try again.",
}


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, principal: MaybeSignedIn, next: str = "") -> Response:
    if principal is not None:
        return RedirectResponse(_destination(principal.role, next), status_code=303)
    return _login_form(request, next)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    database: DatabaseDep,
    now: Now,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    _check_login_csrf(request, csrf_token)
    address = client_address(request)
    outcome = await database.run(
        lambda session: _signed_in(sign_in_with_password(session, email, password, address, now))
    )
    if isinstance(outcome, Refused):
        status = 429 if outcome is Refused.throttled else 401
        return _login_form(request, next, REFUSED[outcome], email, status)
    role, token = outcome
    return _with_session(request, RedirectResponse(_destination(role, next), 303), token)


@router.get("/login/link/{token}", response_class=HTMLResponse)
async def link_page(request: Request, token: str, database: DatabaseDep, now: Now) -> Response:
    """A page with a button: opening the link (a mail scanner, a preview) signs nobody in."""
    valid = await database.run(lambda session: link_is_valid(session, token, now))
    csrf = new_token()
    response = render(request, "link.html", 200 if valid else 410, valid=valid, csrf_token=csrf)
    _set_login_csrf(request, response, csrf)
    return response


@router.post("/login/link/{token}", response_class=HTMLResponse)
async def use_link(
    request: Request,
    token: str,
    database: DatabaseDep,
    now: Now,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    _check_login_csrf(request, csrf_token)
    address = client_address(request)
    outcome = await database.run(
        lambda session: _signed_in(sign_in_with_link(session, token, address, now))
    )
    if isinstance(outcome, Refused):
        return render(request, "link.html", 410, valid=False)
    role, session_token = outcome
    return _with_session(request, RedirectResponse(_destination(role, ""), 303), session_token)


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(
    request: Request, principal: MaybeSignedIn, database: DatabaseDep, now: Now
) -> Response:
    if principal is not None:
        address = client_address(request)
        await database.run(lambda session: sign_out(session, principal, address, now))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _signed_in(outcome: tuple[User, str] | Refused) -> tuple[Role, str] | Refused:
    """What the route needs of a sign-in, read inside the unit of work."""
    if isinstance(outcome, Refused):
        return outcome
    user, token = outcome
    return Role(user.role), token


def _destination(role: Role, next_path: str) -> str:
    """Back where the person was going (on this site only), or their role's home page."""
    if next_path.startswith("/") and not next_path.startswith("//"):
        return next_path
    return "/console" if role in STAFF else "/portal"


def _login_form(
    request: Request, next_path: str, problem: str = "", email: str = "", status: int = 200
) -> HTMLResponse:
    csrf = new_token()
    response = render(
        request, "login.html", status, csrf_token=csrf, next=next_path, problem=problem,
        email=email,
    )  # fmt: skip
    _set_login_csrf(request, response, csrf)
    return response


def _secure(request: Request) -> bool:
    return public_base(request).startswith("https://")


def _set_login_csrf(request: Request, response: Response, token: str) -> None:
    """Signing in has no session yet: the form's token must match this cookie instead."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
        secure=_secure(request), path="/login",
    )  # fmt: skip


def _check_login_csrf(request: Request, submitted: str) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, submitted):
        raise HTTPException(403, "This form has expired: go back, reload the page and try again.")


def _with_session(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(SESSION_LIFETIME.total_seconds()), httponly=True,
        samesite="lax", secure=_secure(request), path="/",
    )  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response
