"""What one send's result means for its deliveries: sent, try again, or failed; and whether the
provider may hold an earlier attempt, so the next one must ask it first and send the very same
words. Pure.

Uncertainty is what keeps a contact from being told twice. It begins when a delivery is
claimed (the worker may die mid-send) and ends only with a definite answer about every attempt
so far: the provider accepted one, or it refused this one after a look-up found none before it.
A timeout keeps it; so does a look-up that failed, whatever the send would have said.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.dispatch.throttle import MAX_ATTEMPTS


class Next(StrEnum):
    sent = "sent"
    retry = "retry"
    failed = "failed"


@dataclass(frozen=True)
class SendResult:
    """What came back from one send, in plain terms."""

    accepted: bool  # the provider has it: sent now, or found from an earlier attempt
    transient: bool = False  # refused for now (busy, unreachable): worth another try
    answered: bool = True  # False: no answer at all (a timeout): the provider may have it
    looked_up: bool = True  # any earlier attempt that may have reached it was looked up


@dataclass(frozen=True)
class Verdict:
    next: Next
    uncertain: bool  # the provider may hold an attempt: ask it before sending again
    start_afresh: bool  # nothing can have reached it: the next attempt may rebundle, reword


def after_send(result: SendResult, *, attempts: int, was_uncertain: bool) -> Verdict:
    """The deliveries' next state after a send: `attempts` counts this one."""
    if result.accepted:
        return Verdict(Next.sent, uncertain=False, start_afresh=False)
    uncertain = not result.answered or (was_uncertain and not result.looked_up)
    next_ = Next.retry if result.transient and attempts < MAX_ATTEMPTS else Next.failed
    return Verdict(next_, uncertain, start_afresh=next_ is Next.retry and not uncertain)
