"""Links back to Nightdesk: Twilio's callbacks, and the signed acknowledge link in emails."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer


@dataclass(frozen=True)
class Links:
    """Absolute URLs Twilio and email readers come back to."""

    base: str
    secret_key: str

    def sms_status(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/sms/status?d={delivery_id}"

    def call_twiml(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice?d={delivery_id}"

    def call_status(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice/status?d={delivery_id}"

    def ack(self, message_id: int, contact_id: int | None) -> str:
        token = URLSafeSerializer(self.secret_key, salt="ack").dumps([message_id, contact_id])
        return f"{self.base}/ack/{token}"


def read_ack_token(secret_key: str, token: str) -> tuple[int, int | None] | None:
    """The (message id, contact id) an email's acknowledge link stands for, if it is genuine."""
    try:
        payload = URLSafeSerializer(secret_key, salt="ack").loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return ack_target(payload)


LARGEST_ID = 2**31 - 1  # the ids' INTEGER columns


def ack_target(payload: object) -> tuple[int, int | None] | None:
    """[message id, contact id or null], each an id the database could hold; None for anything
    else. A genuine token always has that shape; this keeps a token signed with a leaked key, or
    by an older version, from reaching the database as a string, a list or a huge number."""
    if not isinstance(payload, list) or len(payload) != 2:
        return None
    message_id, contact_id = payload
    if not _is_id(message_id) or not (contact_id is None or _is_id(contact_id)):
        return None
    return message_id, contact_id


def _is_id(value: object) -> bool:
    # bool is an int to Python, and true is an int in JSON's eyes; neither is an id.
    return type(value) is int and 0 < value <= LARGEST_ID
