"""What a summary says in privacy mode: counts, times, urgencies and who took each; nothing of
the caller. Pure."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from app.summaries.digest import Digest, Entry, render
from app.summaries.schedule import Period

LONDON = ZoneInfo("Europe/London")
AT = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
ENTRY = Entry(
    id=159, ref="4F", at=AT, caller="+447700900555", caller_name="Ann Lee",
    callback="+447700900556", urgency="urgent", outcome="message", status="acknowledged",
    answers={"symptom": "chest pain"}, transcription="It hurts since tonight",
    notified=[("Dr Kay", ["sms"])], acknowledged_by="Dr Kay",
    acknowledged_at=AT + dt.timedelta(minutes=4),
    link="https://nightdesk.test/portal/messages/159",
)  # fmt: skip
PERIOD = Period(AT - dt.timedelta(hours=10), AT + dt.timedelta(hours=6))
CONTENT = ("Ann Lee", "900555", "900556", "chest", "hurts", "tel:")


def test_a_private_summary_keeps_the_facts_and_drops_the_caller() -> None:
    subject, text, html = render(Digest("Quiet Clinic", LONDON, PERIOD, [ENTRY], private=True))

    assert subject == "Quiet Clinic: 1 message, 1 urgent"
    assert "URGENT #4F  02:00 GMT Thu 26 Nov\n" in text
    assert "Taken by Dr Kay at 02:04 GMT Thu 26 Nov" in text
    assert "Notified: Dr Kay (text)" in text
    assert "What they said is in the portal." in text
    assert "https://nightdesk.test/portal/messages/159" in text + html
    assert [c for c in CONTENT if c in subject + text + html] == []


def test_the_same_summary_without_privacy_mode_names_the_caller_and_what_they_said() -> None:
    _, text, html = render(Digest("Quiet Clinic", LONDON, PERIOD, [ENTRY]))

    shown = [c for c in CONTENT if c in text + html]
    assert shown == [c for c in CONTENT if c != "900555"]  # the callback number is shown instead
