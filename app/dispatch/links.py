"""Links back to Nightdesk: Twilio's callbacks, and the signed acknowledge link in emails.

An acknowledge link is signed with the time it was made (itsdangerous' URLSafeTimedSerializer,
on the app's clock) and works for NIGHTDESK_ACK_LINK_DAYS: an old email forwarded or leaked
can't take a message months later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from app.timeutil import Clock

DEFAULT_ACK_DAYS = 7
LARGEST_ID = 2**31 - 1  # the ids' INTEGER columns


@dataclass(frozen=True)
class AckTarget:
    """What a genuine acknowledge link stands for, and whether it has run out."""

    message_id: int
    contact_id: int | None
    expired: bool = False


@dataclass(frozen=True)
class Links:
    """Absolute URLs Twilio and email readers come back to."""

    base: str
    secret_key: str
    clock: Clock
    ack_days: int = DEFAULT_ACK_DAYS

    def sms_status(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/sms/status?d={delivery_id}"

    def call_twiml(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice?d={delivery_id}"

    def call_status(self, delivery_id: int) -> str:
        return f"{self.base}/twilio/notify/voice/status?d={delivery_id}"

    def ack(self, message_id: int, contact_id: int | None) -> str:
        token = self._serializer().dumps([message_id, contact_id])
        return f"{self.base}/ack/{token}"

    @staticmethod
    def ack_recording(ack_url: str) -> str:
        """The acknowledge link's message's recording, played through Nightdesk for as long as
        the link works: Twilio's own URL never goes in an email."""
        return f"{ack_url}/recording"

    def read_ack(self, token: str) -> AckTarget | None:
        """What an email's acknowledge link stands for; None unless we signed it.

        Its age is worked out here rather than by itsdangerous' max_age, which also refuses a
        link "from the future": one signed by a worker whose clock runs a second ahead."""
        try:
            payload, signed_at = self._serializer().loads(token, return_timestamp=True)
        except BadSignature:
            return None
        target = ack_target(payload)
        if target is None:
            return None
        expired = self.clock() - signed_at > dt.timedelta(days=self.ack_days)
        return AckTarget(*target, expired=expired)

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self.secret_key, salt="ack", signer=ClockSigner, signer_kwargs={"clock": self.clock}
        )


class ClockSigner(TimestampSigner):
    """itsdangerous' TimestampSigner on the app's clock, so a test moves a FakeClock a week on
    instead of waiting one."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return int(self.clock().timestamp())


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
