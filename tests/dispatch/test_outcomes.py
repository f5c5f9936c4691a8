"""What a send's result means for its deliveries: the doubt that keeps a contact from being told
twice lasts until an answer settles it. Pure."""

from __future__ import annotations

from app.dispatch.outcomes import Next, SendResult, Verdict, after_send
from app.dispatch.throttle import MAX_ATTEMPTS

ACCEPTED = SendResult(accepted=True)
TIMED_OUT = SendResult(accepted=False, transient=True, answered=False)
BUSY = SendResult(accepted=False, transient=True)  # a 429 or 500: Twilio answered, took nothing
REFUSED = SendResult(accepted=False)  # an invalid number
LOOK_UP_FAILED = SendResult(accepted=False, transient=True, looked_up=False)


def test_a_send_twilio_took_or_already_had_is_settled() -> None:
    assert after_send(ACCEPTED, attempts=3, was_uncertain=True) == Verdict(Next.sent, False, False)


def test_a_timeout_leaves_the_send_in_doubt_and_its_words_kept() -> None:
    verdict = after_send(TIMED_OUT, attempts=1, was_uncertain=False)
    assert verdict == Verdict(Next.retry, uncertain=True, start_afresh=False)


def test_a_definite_refusal_of_a_fresh_send_lets_the_next_attempt_start_afresh() -> None:
    assert after_send(BUSY, attempts=1, was_uncertain=False) == Verdict(Next.retry, False, True)


def test_a_definite_refusal_after_a_look_up_found_nothing_ends_the_doubt() -> None:
    assert after_send(BUSY, attempts=2, was_uncertain=True) == Verdict(Next.retry, False, True)


def test_a_look_up_that_failed_settles_nothing() -> None:
    verdict = after_send(LOOK_UP_FAILED, attempts=2, was_uncertain=True)
    assert verdict == Verdict(Next.retry, uncertain=True, start_afresh=False)


def test_a_permanent_refusal_fails_at_once() -> None:
    assert after_send(REFUSED, attempts=1, was_uncertain=False).next is Next.failed


def test_transient_failures_give_up_after_the_last_attempt() -> None:
    assert after_send(BUSY, attempts=MAX_ATTEMPTS - 1, was_uncertain=False).next is Next.retry
    assert after_send(BUSY, attempts=MAX_ATTEMPTS, was_uncertain=False).next is Next.failed
