"""What contacts read, how their replies are understood, and how often they are texted. Pure."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.acks.replies import Reply, ReplyKind, parse_reply
from app.dispatch import texts
from app.dispatch.texts import (
    MessageSummary,
    bundle_sms,
    call_script,
    fit_two_segments,
    notification_sms,
    sms_length,
)
from app.dispatch.throttle import WINDOW, hold_until, pace, retry_delay

SUMMARY = MessageSummary(
    client="Acme Plumbing",
    ref="4F",
    caller="+447911123456",
    urgency="emergency",
    answers={"name": "Sam Taylor", "callback": "+447911123456"},
    transcription="The boiler is leaking into the kitchen ceiling. " * 20,
)


def test_a_notification_names_the_caller_and_fits_two_segments_without_links() -> None:
    text = notification_sms(SUMMARY)
    assert text.startswith("EMERGENCY Acme Plumbing #4F: Sam Taylor (+447911123456): The boiler")
    assert text.endswith("Reply 1 to take it (ACK 4F if several).")
    used, limit = sms_length(text)
    assert used <= limit == 306
    assert "http" not in text


def test_a_character_outside_gsm7_halves_the_room() -> None:
    text = fit_two_segments("Zoë called about the leak. " * 20)
    assert sms_length(text) == (len(text), 134)
    assert len(text) <= 134


def cut_one_at_a_time(text: str) -> str:
    """The obvious way to fit two segments (quadratic): what fit_two_segments must agree with."""
    if sms_length(text)[0] <= sms_length(text)[1]:
        return text
    while text and sms_length(text + "...")[0] > sms_length(text + "...")[1]:
        text = text[:-1]
    return text.rstrip() + "..."


# GSM-7, GSM-7's two-character extension, spaces to trim, and characters that need UCS-2.
SMS_CHARACTERS = st.sampled_from(["a", "b", " ", "\n", "€", "[", "ë", "✓", "🙂"])


# Runs of one character, so texts are often long enough to cut, and cut in the middle of a run.
SMS_TEXTS = st.lists(st.tuples(SMS_CHARACTERS, st.integers(1, 120)), max_size=8).map(
    lambda runs: "".join(character * count for character, count in runs)
)


@given(SMS_TEXTS)
@example("a" * 302 + "€" * 5)  # an extended character straddles the cut
@example("a" * 200 + "ë")  # cutting the only UCS-2 character would make room for GSM-7...
@example("a" * 130 + " " * 10 + "ë" * 10)  # ...and trailing spaces go before the "..."
def test_a_text_is_cut_exactly_where_cutting_one_character_at_a_time_would_cut_it(
    text: str,
) -> None:
    assert fit_two_segments(text) == cut_one_at_a_time(text)


@pytest.mark.parametrize(
    ("character", "kept"),
    [("a", 303), ("€", 151), ("ë", 131)],
)
def test_a_megabyte_transcription_is_cut_to_two_segments_in_one_pass(
    character: str, kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = texts._fits
    calls: list[str] = []

    def fits_counted(text: str) -> bool:
        calls.append(text)
        assert len(calls) <= 2, (
            "fit_two_segments should not recount the text character by character"
        )
        return counted(text)

    monkeypatch.setattr(texts, "_fits", fits_counted)

    text = fit_two_segments(character * 1_000_000)

    assert text == character * kept + "..."
    assert counted(text)


def test_a_bundle_lists_each_message_with_its_reference() -> None:
    other = MessageSummary("Acme Plumbing", "4G", "+441134960999", "routine", {}, "No heating")
    text = bundle_sms("Acme Plumbing", [SUMMARY, other])
    assert text.startswith("2 new messages for Acme Plumbing:")
    assert "#4F" in text
    assert "#4G" in text


def test_a_page_sent_again_because_the_call_back_is_late_says_so_on_every_channel() -> None:
    late = replace(SUMMARY, overdue=True)
    private = replace(late, private=True)

    assert notification_sms(late).startswith("CALL BACK OVERDUE: EMERGENCY Acme Plumbing #4F: ")
    used, limit = sms_length(notification_sms(late))
    assert used <= limit  # two segments, the caller's words cut to make room
    assert notification_sms(private).startswith("CALL BACK OVERDUE: New emergency message for")
    assert "#4F (call back overdue) Sam Taylor" in bundle_sms("Acme Plumbing", [late, SUMMARY])
    said = "The call back promised for this message is overdue."
    assert said in call_script(late)
    assert said in texts.pin_prompt(private, "en-GB")
    assert said in texts.voicemail_notice(late)
    assert texts.email_subject(late).startswith("[CALL BACK OVERDUE] [EMERGENCY] ")
    for first_page in (notification_sms(SUMMARY), call_script(SUMMARY), bundle_sms("A", [SUMMARY])):
        assert "overdue" not in first_page.lower()


def test_the_call_reads_the_number_back_digit_by_digit() -> None:
    script = call_script(SUMMARY)
    assert "an emergency message for Acme Plumbing" in script
    assert "0 7 9, 1 1 1, 2 3 4, 5 6" in script


def test_a_menu_choice_that_only_restates_the_urgency_is_not_what_the_caller_said() -> None:
    """Issue 13: before the voicemail is transcribed, the on-call text said "reason: routine"."""
    summary = MessageSummary(
        "Acme Plumbing", "4F", "+447911123456", "routine",
        {"reason": "routine", "name": "Sam Taylor", "callback": "+447911123456"}, None,
    )  # fmt: skip

    assert summary.gist == ""
    assert notification_sms(summary) == (
        "Acme Plumbing #4F: Sam Taylor (+447911123456). Reply 1 to take it (ACK 4F if several)."
    )
    assert call_script(summary).endswith("Their number is 0 7 9, 1 1 1, 2 3 4, 5 6.")
    assert bundle_sms("Acme Plumbing", [summary, summary]).splitlines()[1] == (
        "#4F Sam Taylor (+447911123456)"
    )


def test_what_the_caller_said_comes_first_and_their_other_answers_stay() -> None:
    summary = MessageSummary(
        "Riverside Medical Group", "4G", "+17185550199", "emergency",
        {"reason": "urgent", "patient_name": "Ann Lee", "date_of_birth": "4 March 1982"},
        "Chest pain since tonight",
    )  # fmt: skip

    assert summary.gist == "Chest pain since tonight; date of birth: 4 March 1982"
    assert "reason" not in notification_sms(summary)


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("1", Reply(ReplyKind.ack)),
        ("OK", Reply(ReplyKind.ack)),
        ("  ack  ", Reply(ReplyKind.ack)),
        ("ACK 4f", Reply(ReplyKind.ack, "4F")),
        ("ack#4F", Reply(ReplyKind.ack, "4F")),
        ("STOP", Reply(ReplyKind.stop)),
        ("start", Reply(ReplyKind.start)),
        ("Help", Reply(ReplyKind.help)),
        ("who is this?", Reply(ReplyKind.unknown)),
    ],
)
def test_replies_are_read_forgiving_case_and_spacing(text: str, meant: Reply) -> None:
    assert parse_reply(text) == meant


def test_one_text_per_contact_per_window() -> None:
    now = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
    assert hold_until(None, now) is None
    assert hold_until(now - dt.timedelta(seconds=20), now) == now + WINDOW - dt.timedelta(
        seconds=20
    )
    assert hold_until(now - WINDOW, now) is None


def test_in_one_batch_a_contact_is_rung_once_and_the_next_call_waits_for_the_window() -> None:
    now = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
    dana, sam = ("+447911222333", "voice"), ("+447911123456", "voice")
    earlier = {sam: now - dt.timedelta(seconds=50)}

    plan = pace([dana, dana, sam, dana], earlier, now)

    assert plan == [None, now + WINDOW, now + dt.timedelta(seconds=10), now + WINDOW]


def test_a_text_and_a_call_to_one_person_are_paced_apart_from_each_other() -> None:
    now = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
    assert pace([("+447911222333", "sms"), ("+447911222333", "voice")], {}, now) == [None, None]


def test_retries_back_off_with_jitter_and_a_ceiling() -> None:
    rng = random.Random(7)
    delays = [retry_delay(attempt, rng).total_seconds() for attempt in range(1, 12)]
    assert 1 <= delays[0] <= 2
    assert delays[3] > delays[0]
    assert max(delays) <= 300
