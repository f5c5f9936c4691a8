"""Reading a contact's SMS reply: an acknowledgement, STOP/START/HELP, or something else. Pure.

Case and spacing are forgiven: '1', 'ok', 'Ack', ' ACK 4f ', 'ack#4F' all acknowledge.
STOP and friends are the carrier keywords Twilio also acts on itself.
https://help.twilio.com/articles/223134027
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ReplyKind(StrEnum):
    ack = "ack"
    stop = "stop"
    start = "start"
    help = "help"
    unknown = "unknown"


@dataclass(frozen=True)
class Reply:
    kind: ReplyKind
    ref: str | None = None


_STOP = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"}
_START = {"start", "yes", "unstop", "subscribe"}
_HELP = {"help", "info"}
_ACK = re.compile(r"^(?:1|ok|okay|ack|acknowledge|got it|mine|yes i have it)\b\W*#?\s*([0-9a-z]*)$")


def parse_reply(text: str) -> Reply:
    """What a contact meant by their reply."""
    cleaned = " ".join(text.lower().split())
    if cleaned in _STOP:
        return Reply(ReplyKind.stop)
    if cleaned in _START:
        return Reply(ReplyKind.start)
    if cleaned in _HELP:
        return Reply(ReplyKind.help)
    match = _ACK.match(cleaned)
    if match:
        ref = match.group(1).upper() or None
        return Reply(ReplyKind.ack, ref)
    return Reply(ReplyKind.unknown)
