"""The sandbox page's rows, from the sandbox's records as plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from app.sandbox_page.views import email_view, sent_rows
from app.telephony.sandbox.fake_resources import CallRecord, MessageRecord

NIGHT = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def sms(to: str, body: str, minutes: int) -> MessageRecord:
    at = NIGHT + timedelta(minutes=minutes)
    return MessageRecord("SM1", "AC1", to, "+441134960000", body, None, None, at, "delivered")


def call(to: str, minutes: int, direction: str = "outbound-api") -> CallRecord:
    at = NIGHT + timedelta(minutes=minutes)
    return CallRecord("CA1", "AC1", to, "+441134960000", at, direction, "completed")


def email(subject: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "desk@nightdesk.test", "o@a.test", subject
    message.set_content("Plain words")
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def test_texts_calls_and_emails_are_one_list_newest_first() -> None:
    rows = sent_rows(
        [sms("+447911000001", "First", 0), sms("+447911000002", "Third", 20)],
        [call("+447911000003", 10)],
        [(NIGHT + timedelta(minutes=30), email("Fourth"))],
    )

    assert [(row.kind, row.to) for row in rows] == [
        ("Email", "o@a.test"), ("SMS", "+447911000002"), ("Call", "+447911000003"),
        ("SMS", "+447911000001"),
    ]  # fmt: skip
    assert rows[0].summary == "Fourth"
    assert rows[0].link == "/sandbox/emails/1"
    assert (rows[1].summary, rows[1].sender, rows[1].status) == (
        "Third",
        "+441134960000",
        "delivered",
    )
    assert rows[1].link is None


def test_a_caller_ringing_in_is_not_something_the_sandbox_sent() -> None:
    assert sent_rows([], [call("+441134960000", 0, direction="inbound")], []) == []


def test_an_email_shows_its_plain_text_and_its_html_as_given() -> None:
    html = "<p>Hello <script>alert(1)</script></p>"
    emails = [(NIGHT, email("Plain only")), (NIGHT, email("Both", html))]

    plain, both = email_view(emails, 1), email_view(emails, 2)

    assert plain is not None
    assert (plain.subject, plain.text.strip() if plain.text else None) == (
        "Plain only",
        "Plain words",
    )
    assert plain.html is None
    assert both is not None
    assert both.html is not None
    assert both.html.strip() == html  # left as it is: the page escapes it into a sandboxed frame


def test_a_folded_or_missing_subject_reads_cleanly() -> None:
    untitled = email("")
    del untitled["Subject"]
    emails = [(NIGHT, email("   Spaced out  ")), (NIGHT, untitled)]

    assert [row.summary for row in sent_rows([], [], emails)] == ["Spaced out", "(no subject)"]


def test_there_is_no_email_zero_nor_one_past_the_last() -> None:
    emails = [(NIGHT, email("Only"))]

    assert email_view(emails, 0) is None
    assert email_view(emails, 2) is None
