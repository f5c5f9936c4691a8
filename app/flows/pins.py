"""PINs for privacy mode: what a flow file stores (a salted hash, never the PIN) and checking a
PIN keyed on the phone against it. Pure: hashlib only.

A flow file is kept in git and copied into the database, so it holds
`pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`, written by `nightdesk flows pin`. A short PIN
can still be found from its hash by trying every one, so the hash keeps the PIN from being read
at a glance (in git, the database, a log); what keeps a caller from guessing it is the call's
bounded number of tries (`app.acks.pin`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ALGORITHM = "pbkdf2-sha256"
ITERATIONS = 20_000  # about 7 ms a check: a key press on a notification call, not a hot path
PIN_PATTERN = re.compile(r"^\d{4,8}$")
HASH_PATTERN = re.compile(rf"^{ALGORITHM}\$(\d{{4,7}})\$([0-9a-f]{{32}})\$([0-9a-f]{{64}})$")


class BadPinError(ValueError):
    """Not a PIN a keypad can enter: 4 to 8 digits."""


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The line a flow file stores for `pin`."""
    if not PIN_PATTERN.match(pin):
        raise BadPinError("a PIN is 4 to 8 digits, entered on the phone's keypad")
    salt = salt if salt is not None else secrets.token_bytes(16)
    derived = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{ALGORITHM}${iterations}${salt.hex()}${derived.hex()}"


def is_pin_hash(value: str) -> bool:
    """Whether `value` is a hash `hash_pin` wrote (not, say, the PIN itself)."""
    return HASH_PATTERN.match(value) is not None


def pin_matches(keyed: str | None, stored: str) -> bool:
    """Whether the digits keyed on the phone are the PIN behind `stored`, in constant time."""
    found = HASH_PATTERN.match(stored)
    if found is None or keyed is None or not PIN_PATTERN.match(keyed):
        return False
    iterations, salt, expected = int(found[1]), bytes.fromhex(found[2]), found[3]
    derived = hashlib.pbkdf2_hmac("sha256", keyed.encode(), salt, iterations).hex()
    return hmac.compare_digest(derived, expected)
