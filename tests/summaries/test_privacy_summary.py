"""Privacy mode from the client's side: the morning summary counts the night's messages and says
when each came, how urgent it was, who was told and who took it, but nothing of the caller;
a real SMTP server on loopback receives it."""

from __future__ import annotations

from collections.abc import Callable

from app.flows.pins import hash_pin
from app.flows.schema import Urgency
from app.telephony.sandbox.fake_twilio import FakeTwilio
from tests.summaries.conftest import ACME, LONDON, OLIVE, Night, html_of, text_of, to, wall
from tests.support.smtp import SmtpInbox

PRIVATE_ACME = ACME.replace(
    "    caller_updates: false\n",
    f'    caller_updates: false\n    privacy:\n      pin: "{hash_pin("2468")}"\n',
)
CONTENT = ("Jo Bloggs", "+441134960888", "7700", "radiator", "Sam Green", "boiler", "leaking")


def test_the_summary_lists_counts_times_and_standing_but_nothing_the_callers_said(
    night: Night,
    inbox: SmtpInbox,
    fake_twilio: FakeTwilio,
    load_client: Callable[[str], None],
) -> None:
    load_client(PRIVATE_ACME)
    routine = night.message(
        wall(LONDON, "2026-11-25 22:10"), name="Jo Bloggs", callback="+441134960888",
        reason="Quote for a new radiator", caller="+447700900555",
    )  # fmt: skip
    urgent = night.message(
        wall(LONDON, "2026-11-26 02:00"), urgency=Urgency.urgent, name="Sam Green",
        transcription="The boiler is leaking everywhere",
    )  # fmt: skip
    night.dispatcher().run_once()
    night.acknowledge(urgent, "Sam Taylor", wall(LONDON, "2026-11-26 02:05"))

    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()

    inbox.wait_for(2)
    (email,) = to(inbox, OLIVE)
    assert email["Subject"] == "Acme Plumbing: 2 messages, 1 urgent"
    text, html = text_of(email), html_of(email)
    assert "02:00 GMT Thu 26 Nov" in text
    assert "Taken by Sam Taylor at 02:05 GMT Thu 26 Nov" in text
    assert "Notified: Sam Taylor (text)" in text
    assert text.count("What they said is in the portal.") == 2
    assert f"https://nightdesk.test/portal/messages/{routine}" in text
    assert [secret for secret in CONTENT if secret in text + html] == []
    # Nor the copy to the other recipient, nor the text Sam was sent through the fake Twilio.
    assert [secret for secret in CONTENT for m in inbox.messages if secret in str(m)] == []
    sent = [m.body for m in fake_twilio.messages]
    assert len(sent) == 2
    assert [secret for secret in CONTENT for body in sent if secret in body] == []
