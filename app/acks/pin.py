"""Privacy mode's decision on the notification call: is the PIN keyed right, may the contact try
again, or does the call end. Pure.

The contact gets `PIN_TRIES` tries on each call (silence counts as one); the wrong PIN a third
time ends the call with no word of the message. Escalation carries on as for a call nobody took.
"""

from __future__ import annotations

from enum import StrEnum

from app.flows.pins import pin_matches

PIN_TRIES = 3


class PinVerdict(StrEnum):
    accepted = "accepted"  # read the message and the options
    again = "again"  # ask for the PIN once more
    refused = "refused"  # goodbye, nothing read


def judge_pin(keyed: str | None, stored: str, tries: int) -> PinVerdict:
    """The verdict on try number `tries` (from 1), where `keyed` is what the contact keyed
    (None: they keyed nothing) and `stored` the PIN's hash from the flow file."""
    if pin_matches(keyed, stored):
        return PinVerdict.accepted
    return PinVerdict.again if tries < PIN_TRIES else PinVerdict.refused
