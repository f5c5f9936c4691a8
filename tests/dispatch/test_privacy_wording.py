"""What privacy mode lets a text, an email or a call's first words say, and the PIN's verdicts.
Pure: plain values in, words out."""

from __future__ import annotations

import pytest

from app.acks.pin import PIN_TRIES, PinVerdict, judge_pin
from app.dispatch.texts import (
    MessageSummary,
    bundle_sms,
    email_bodies,
    email_subject,
    notification_sms,
    pin_prompt,
    voicemail_notice,
)
from app.flows.pins import BadPinError, hash_pin, is_pin_hash, pin_matches

PRIVATE = MessageSummary(
    client="Riverside Medical Group",
    ref="4F",
    caller="+17185550199",
    urgency="urgent",
    answers={"patient_name": "Ann Lee", "callback": "+17185550188", "reason": "prescription"},
    transcription="I ran out of my heart medication.",
    private=True,
    portal_link="https://nightdesk.test/portal/messages/159",
)
# Content: the caller's words, the transcription, the recording link, their name and numbers.
CONTENT = ("Ann Lee", "5550199", "5550188", "prescription", "heart", "medication", "/recording")
RECORDING = "https://nightdesk.test/ack/token/recording"  # plays it through Nightdesk


def leaked(*texts: str) -> list[str]:
    return [secret for secret in CONTENT if any(secret in text for text in texts)]


def test_a_private_text_names_the_client_urgency_and_reference_and_nothing_else() -> None:
    assert notification_sms(PRIVATE) == (
        "New urgent message for Riverside Medical Group #4F, reply 1 to take it "
        "(ACK 4F if several); details in the portal."
    )


def test_a_routine_private_text_does_not_call_itself_routine() -> None:
    routine = MessageSummary(**{**PRIVATE.__dict__, "urgency": "routine"})
    assert notification_sms(routine).startswith("New message for Riverside Medical Group #4F,")


def test_a_private_bundle_lists_references_and_urgencies_only() -> None:
    other = MessageSummary(**{**PRIVATE.__dict__, "ref": "4G", "urgency": "emergency"})
    text = bundle_sms("Riverside Medical Group", [PRIVATE, other])
    assert text == (
        "2 new messages for Riverside Medical Group:\n#4F urgent\n#4G emergency\n"
        "Reply 1 to take them all, or ACK and a # for one; details in the portal."
    )


def test_a_private_email_links_to_the_portal_and_carries_no_content_nor_the_recording() -> None:
    ack = "https://nightdesk.test/ack/token"
    text, html = email_bodies(PRIVATE, RECORDING, ack, 3)
    subject = email_subject(PRIVATE)

    assert subject == "[URGENT] New message for Riverside Medical Group (#4F)"
    assert leaked(subject, text, html) == []
    assert "https://nightdesk.test/portal/messages/159" in text
    assert "https://nightdesk.test/portal/messages/159" in html
    assert ack in text


def test_the_same_message_without_privacy_mode_carries_its_content() -> None:
    """The control for the tests above: the same summary, outside privacy mode, leaks it all."""
    open_summary = MessageSummary(**{**PRIVATE.__dict__, "private": False})
    text, html = email_bodies(open_summary, RECORDING, "https://nightdesk.test/ack/t", 3)
    assert leaked(notification_sms(open_summary)) != []
    everything = leaked(email_subject(open_summary), text, html)
    assert {"Ann Lee", "heart", "/recording"} <= set(everything)


def test_the_pin_prompt_and_the_voicemail_notice_say_nothing_of_the_message() -> None:
    assert pin_prompt(PRIVATE, "en-US") == (
        "This is Nightdesk with an urgent message for Riverside Medical Group. "
        "Please enter your PIN, then press the pound key."
    )
    assert pin_prompt(PRIVATE, "en-GB", again=True).endswith("then press the hash key.")
    assert leaked(pin_prompt(PRIVATE, "en-US"), voicemail_notice(PRIVATE)) == []


# --- PINs -------------------------------------------------------------------------------------

STORED = hash_pin("2468", salt=bytes(range(16)))


def test_a_pin_is_stored_as_a_salted_hash_that_only_the_pin_matches() -> None:
    assert "2468" not in STORED
    assert is_pin_hash(STORED)
    assert hash_pin("2468") != hash_pin("2468")  # a fresh salt each time
    assert pin_matches("2468", STORED)
    assert not pin_matches("2469", STORED)
    assert not pin_matches("24680", STORED)
    assert not pin_matches(None, STORED)
    assert not pin_matches("2468", "2468")  # a PIN written where its hash belongs opens nothing


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "", "12 34"])
def test_a_pin_is_four_to_eight_digits(pin: str) -> None:
    with pytest.raises(BadPinError):
        hash_pin(pin)


def test_three_tries_then_goodbye() -> None:
    assert PIN_TRIES == 3
    assert judge_pin("2468", STORED, 1) is PinVerdict.accepted
    assert judge_pin("2468", STORED, 3) is PinVerdict.accepted  # the last try can still be right
    assert judge_pin("1111", STORED, 1) is PinVerdict.again
    assert judge_pin("1111", STORED, 2) is PinVerdict.again
    assert judge_pin("1111", STORED, 3) is PinVerdict.refused
    assert judge_pin(None, STORED, 3) is PinVerdict.refused  # silence is a try
    assert judge_pin("1111", STORED, 9) is PinVerdict.refused
