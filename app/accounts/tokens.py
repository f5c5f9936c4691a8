"""Secrets for sign-in links, sessions and API keys: random, shown once, stored as a digest."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "ndk_"
_PASSWORDS = PasswordHasher()


def new_token() -> str:
    """32 random bytes, URL-safe: a secret nobody can guess."""
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    """`ndk_` and a token: the prefix lets secret scanners (and people) recognise one."""
    return API_KEY_PREFIX + new_token()


def digest(token: str) -> str:
    """What the database keeps of a token: enough to recognise it, useless to sign in with."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _PASSWORDS.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """True for the right password; False for a wrong one, or none set (a link-only user)."""
    if not password_hash:
        _PASSWORDS.hash(password)  # the same time either way: don't tell which users have one
        return False
    try:
        return _PASSWORDS.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
