"""`nightdesk users …` and `nightdesk api-keys …`: people who sign in, and client API keys."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

from app.accounts.models import Role
from app.accounts.service import (
    AccountError,
    add_user,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    sign_in_link,
)
from app.db import sessions_for_command, transaction
from app.settings import get_settings
from app.timeutil import utcnow

users_app = typer.Typer(help="People who sign in to the console and the portal.")
keys_app = typer.Typer(help="Client API keys for /api/v1.")

DEV_PUBLIC_URL = "http://127.0.0.1:8000"  # where `nightdesk serve` listens by default


def _sessions() -> sessionmaker[Session]:
    return sessions_for_command(get_settings().database_url)


@users_app.command("add")
def users_add(
    email: str,
    role: Annotated[Role, typer.Option(help="admin, supervisor, pa or client")],
    client: Annotated[
        str | None, typer.Option(help="The client business a client user belongs to (its slug)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The name shown in the console")] = None,
    phone: Annotated[
        str | None, typer.Option(help="A PA's phone (+E.164): the console rings it for calls")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a password from standard input")
    ] = False,
) -> None:
    """Add an account and print a one-time sign-in link (valid 24 hours) on the last line."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        raise typer.BadParameter("no password on standard input", param_hint="--password-stdin")
    now = utcnow()
    try:
        with transaction(_sessions()) as session:
            user = add_user(
                session, email, role, now, client_slug=client, name=name, password=password,
                phone=phone,
            )  # fmt: skip
            token = None if password else sign_in_link(session, user, now)
            described = f"{user.role} {user.email}" + (f" of {client}" if client else "")
    except AccountError as exc:
        typer.echo(f"nightdesk users add: {exc}", err=True)
        raise typer.Exit(1) from None
    if token is None:
        typer.echo(f"added {described}; they sign in with their password")
        return
    base = get_settings().public_url.rstrip("/") or DEV_PUBLIC_URL
    typer.echo(f"added {described}; this link signs them in once, within 24 hours:")
    typer.echo(f"{base}/login/link/{token}")


@keys_app.command("create")
def api_keys_create(
    client: str,
    name: Annotated[str | None, typer.Option(help="What the key is for")] = None,
) -> None:
    """Create an API key for CLIENT and print it alone on the last line: it is shown only once."""
    try:
        with transaction(_sessions()) as session:
            row, key = create_api_key(session, client, name, utcnow())
            described = f"API key {row.id} ({row.name}) for {client}"
    except AccountError as exc:
        typer.echo(f"nightdesk api-keys create: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"created {described}; keep it now, it is not shown again:")
    typer.echo(key)


@keys_app.command("list")
def api_keys_list(
    client: Annotated[str | None, typer.Option(help="Only this client's keys")] = None,
) -> None:
    """API keys: id, client, name, first characters, created, last used, revoked."""
    with transaction(_sessions()) as session:
        keys = list_api_keys(session, client)
        lines = [
            f"{key.id:<5} {slug:<20} {key.prefix}…  {key.name:<30} "
            f"created {key.created_at:%Y-%m-%d}  "
            + (f"last used {key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used")
            + (f"  REVOKED {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "")
            for key, slug in keys
        ]
    typer.echo("\n".join(lines) if lines else "no API keys")


@keys_app.command("revoke")
def api_keys_revoke(key_id: int) -> None:
    """Revoke an API key: it stops working at once."""
    try:
        with transaction(_sessions()) as session:
            key = revoke_api_key(session, key_id, utcnow())
            name = key.name
    except AccountError as exc:
        typer.echo(f"nightdesk api-keys revoke: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked API key {key_id} ({name})")
