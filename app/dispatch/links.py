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
        message_id, contact_id = URLSafeSerializer(secret_key, salt="ack").loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return int(message_id), (int(contact_id) if contact_id is not None else None)
