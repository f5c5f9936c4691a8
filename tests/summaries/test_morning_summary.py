"""From the client's side: the owner opens the morning email and sees the night's messages,
urgent first, on their own clock, with who was told and who took each; once, whatever the
number of dispatchers and restarts. A real SMTP server on loopback receives the mail."""

from __future__ import annotations

import re
import threading
from functools import partial

from sqlalchemy import select

from app.clients.flows import FlowStore
from app.db import make_database
from app.flows.schema import Urgency
from app.summaries.models import Summary
from app.summaries.service import owed_summaries, queue_summary
from tests.summaries.conftest import (
    ACCOUNTS,
    LONDON,
    NEW_YORK,
    OLIVE,
    ROSA,
    Night,
    html_of,
    text_of,
    to,
    wall,
)
from tests.support.smtp import SmtpInbox


def test_the_owner_gets_one_summary_at_opening_time_with_urgent_messages_first(
    night: Night, inbox: SmtpInbox
) -> None:
    routine = night.message(
        wall(LONDON, "2026-11-25 22:10"),
        name="Jo Bloggs",
        callback="+441134960888",
        reason="Quote for a new radiator",
    )
    urgent = night.message(
        wall(LONDON, "2026-11-26 02:00"),
        urgency=Urgency.urgent,
        name="Sam Green",
        transcription="The boiler is leaking everywhere",
    )
    night.dispatcher().run_once()  # Sam is texted about the urgent one
    night.acknowledge(urgent, "Sam Taylor", wall(LONDON, "2026-11-26 02:05"))

    night.clock.set(wall(LONDON, "2026-11-26 07:59"))
    night.dispatcher().run_once()
    assert inbox.messages == []
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()

    emails = inbox.wait_for(2)
    assert sorted(m["To"] for m in emails) == [ACCOUNTS, OLIVE]
    (email,) = to(inbox, OLIVE)
    assert email["Subject"] == "Acme Plumbing: 2 messages, 1 urgent"
    text = text_of(email)
    assert text.index("URGENT") < text.index("Sam Green") < text.index("ROUTINE")
    assert text.index("Sam Green") < text.index("Jo Bloggs")
    assert "02:00 GMT Thu 26 Nov" in text
    assert "22:10 GMT Wed 25 Nov" in text
    assert "Voicemail: The boiler is leaking everywhere" in text
    assert "Reason: Quote for a new radiator" in text
    assert "Jo Bloggs, +441134960888" in text
    assert "Notified: Sam Taylor (text)" in text
    assert "Taken by Sam Taylor at 02:05 GMT Thu 26 Nov" in text
    assert "Nobody took it: every contact was tried" in text  # the routine one, escalated
    assert f"https://nightdesk.test/portal/messages/{urgent}" in text
    assert f"https://nightdesk.test/portal/messages/{routine}" in text

    night.clock.advance(hours=3)
    night.dispatcher().run_once()
    assert len(inbox.messages) == 2, "one summary a morning"


def test_the_html_part_reads_on_a_phone_and_loads_nothing_from_elsewhere(
    night: Night, inbox: SmtpInbox
) -> None:
    message = night.message(
        wall(LONDON, "2026-11-26 01:00"),
        urgency=Urgency.emergency,
        name="<b>Mallory</b>",
        caller="+441134960777",
    )
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()
    page = html_of(to(inbox, OLIVE)[0]) if inbox.wait_for(2) else ""
    assert "name='viewport'" in page
    assert "<b>Mallory</b>" not in page
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in page
    assert "style=" in page
    assert "<style" not in page, "styles are inline: many mail apps drop a <style> block"
    assert not re.search(r"<(img|link|script)\b", page), "nothing to fetch from elsewhere"
    assert f"href='https://nightdesk.test/portal/messages/{message}'" in page
    assert "href='tel:+441134960777'" in page
    assert page.index("EMERGENCY") < page.index("Routine") if "Routine" in page else True


def test_a_quiet_night_is_one_line_saying_so(night: Night, inbox: SmtpInbox) -> None:
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()
    (email, _) = inbox.wait_for(2)
    assert email["Subject"] == "Acme Plumbing: no messages since 08:00 GMT Wed 25 Nov"
    assert text_of(email) == (
        "No messages for Acme Plumbing from 08:00 GMT Wed 25 Nov to 08:00 GMT Thu 26 Nov.\n"
    )


def test_a_client_that_chose_skip_empty_hears_nothing_after_a_quiet_night(
    night: Night, inbox: SmtpInbox, load_client
) -> None:
    from tests.summaries.conftest import ACME

    load_client(
        ACME.replace(
            "recipients: [olive, accounts@acme.example]",
            "recipients: [olive]\n      skip_empty: true",
        )
    )
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()
    night.clock.set(wall(LONDON, "2026-11-27 08:01"))
    night.message(wall(LONDON, "2026-11-27 03:00"), name="Jo Bloggs")
    night.clock.set(wall(LONDON, "2026-11-27 08:01"))
    night.dispatcher().run_once()
    (email,) = [m for m in inbox.wait_for(1) if m["To"] == OLIVE]
    assert email["Subject"] == "Acme Plumbing: 1 message"
    assert "Jo Bloggs" in text_of(email)


def test_clients_in_london_and_new_york_each_get_theirs_at_their_own_time(
    night: Night, inbox: SmtpInbox
) -> None:
    night.message(wall(NEW_YORK, "2026-11-25 21:00"), client="brooklyn-boilers", name="Ann")
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()
    inbox.wait_for(2)
    assert to(inbox, ROSA) == [], "07:30 in New York is 12:30 in London"
    night.clock.set(wall(NEW_YORK, "2026-11-26 07:31"))
    night.dispatcher().run_once()
    (email,) = [m for m in inbox.wait_for(3) if m["To"] == ROSA]
    assert "21:00 EST Wed 25 Nov" in text_of(email)
    assert "to 07:30 EST Thu 26 Nov" in text_of(email)


def test_the_night_the_clocks_go_back_is_summarised_once_at_eight_on_the_new_time(
    night: Night, inbox: SmtpInbox
) -> None:
    import datetime as dt

    def utc(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    night.clock.set(utc("2026-10-23 07:01"))  # Friday 08:01 BST: the summary before
    night.dispatcher().run_once()
    inbox.wait_for(2)
    night.message(utc("2026-10-25 00:30"), name="Before the change")  # 01:30 BST
    night.message(utc("2026-10-25 01:30"), name="After the change")  # 01:30 GMT
    night.clock.set(utc("2026-10-26 07:01"))  # 08:01 yesterday's clock; 07:01 GMT
    night.dispatcher().run_once()
    assert len(inbox.messages) == 2
    night.clock.set(utc("2026-10-26 08:01"))  # Monday 08:01 GMT
    night.dispatcher().run_once()
    email = next(m for m in inbox.wait_for(4) if m["To"] == OLIVE and "2 messages" in m["Subject"])
    text = text_of(email)
    assert "01:30 BST Sun 25 Oct  Before the change" in text
    assert "01:30 GMT Sun 25 Oct  After the change" in text
    assert "from 08:00 BST Fri 23 Oct to 08:00 GMT Mon 26 Oct" in text


def test_two_dispatchers_racing_send_each_recipient_one_summary(
    night: Night, inbox: SmtpInbox
) -> None:
    night.message(wall(LONDON, "2026-11-26 03:00"), name="Jo Bloggs")
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    dispatchers = [night.dispatcher(), night.another_process()]
    barrier = threading.Barrier(2)

    def work(index: int) -> None:
        barrier.wait()
        for _ in range(3):
            dispatchers[index].run_once()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inbox.wait_for(2)
    night.clock.advance(minutes=5)
    dispatchers[0].run_once()
    assert sorted(m["To"] for m in inbox.messages) == [ACCOUNTS, OLIVE]
    with night.sessions() as session:
        assert len(session.scalars(select(Summary)).all()) == 1


def test_two_workers_that_both_found_the_summary_due_write_and_send_it_once(
    night: Night, inbox: SmtpInbox
) -> None:
    night.message(wall(LONDON, "2026-11-26 03:00"), name="Jo Bloggs")
    now = night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    workers = [night.database, make_database(night.settings.database_url)]
    found = [
        worker.run_blocking(lambda session: owed_summaries(session, FlowStore(), now))
        for worker in workers
    ]
    assert found[0] == found[1], "both see the same summary due, before either writes it"
    (owed,) = [o for o in found[0] if o.client == "acme-plumbing"]
    written = [
        worker.run_blocking(
            partial(queue_summary, flows=FlowStore(), owed=owed, portal="https://x", now=now)
        )
        for worker in workers
    ]
    assert [w.status for w in written] == ["queued", "taken"]
    night.dispatcher().run_once()
    assert sorted(m["To"] for m in inbox.wait_for(2)) == [ACCOUNTS, OLIVE]


def test_a_restarted_worker_neither_repeats_a_summary_nor_loses_one_it_had_written(
    night: Night, inbox: SmtpInbox
) -> None:
    night.message(wall(LONDON, "2026-11-26 03:00"), name="Jo Bloggs")
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    first = night.dispatcher()
    summaries = next(m for m in first.modules if m.name == "summaries")
    summaries.run(night.clock())  # written, then the process dies before sending it
    assert inbox.messages == []

    restarted = night.another_process()
    restarted.run_once()
    restarted.run_once()
    inbox.wait_for(2)
    night.clock.advance(hours=1)
    night.another_process().run_once()
    assert sorted(m["To"] for m in inbox.messages) == [ACCOUNTS, OLIVE]


def test_a_message_taken_after_the_summary_is_in_the_next_one(
    night: Night, inbox: SmtpInbox
) -> None:
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()
    inbox.wait_for(2)
    night.message(wall(LONDON, "2026-11-26 08:00:10"), name="Just after eight")
    night.clock.set(wall(LONDON, "2026-11-27 08:01"))
    night.dispatcher().run_once()
    latest = inbox.wait_for(4)[-1]
    assert "Just after eight" in text_of(latest)


def test_a_message_saved_at_the_stroke_of_eight_is_in_that_mornings_summary(
    night: Night, inbox: SmtpInbox
) -> None:
    night.clock.set(wall(LONDON, "2026-11-26 08:00:05"))
    night.dispatcher().run_once()  # the call saving it began at 07:59:59 and commits just after
    night.message(wall(LONDON, "2026-11-26 07:59:59"), name="At the stroke of eight")
    night.clock.set(wall(LONDON, "2026-11-26 08:00:31"))
    night.dispatcher().run_once()
    (email, _) = inbox.wait_for(2)
    assert "At the stroke of eight" in text_of(email)


def test_a_recipient_the_mail_server_refuses_does_not_stop_the_others(
    night: Night, inbox: SmtpInbox
) -> None:
    inbox.replies[ACCOUNTS] = "550 5.1.1 No such user"
    night.message(wall(LONDON, "2026-11-26 03:00"), name="Jo Bloggs")
    night.clock.set(wall(LONDON, "2026-11-26 08:01"))
    night.dispatcher().run_once()
    (email,) = inbox.wait_for(1)
    assert email["To"] == OLIVE
    with night.sessions() as session:
        from app.dispatch.models import Delivery

        refused = session.scalars(select(Delivery).where(Delivery.address == ACCOUNTS)).one()
    assert (refused.kind, refused.status) == ("summary", "failed")
    assert "550" in (refused.error or "")


def test_one_clients_failing_summary_does_not_hold_up_the_others(
    night: Night, inbox: SmtpInbox
) -> None:
    class FailsWritingAcme(FlowStore):
        """Finds Acme's summary due, then fails to write it, as a bug in its flow might."""

        def __init__(self) -> None:
            super().__init__()
            self.reads = 0

        def get(self, session, version_id):
            flow = super().get(session, version_id)
            if flow.client == "acme-plumbing":
                self.reads += 1
                if self.reads > 1:
                    raise RuntimeError("a bug in Acme's summary")
            return flow

    for yesterday in (wall(LONDON, "2026-11-25 08:01"), wall(NEW_YORK, "2026-11-25 07:31")):
        night.clock.set(yesterday)
        night.dispatcher().run_once()
    assert len(inbox.wait_for(3)) == 3
    dispatcher = night.dispatcher()
    summaries = next(m for m in dispatcher.modules if m.name == "summaries")
    summaries.flows = FailsWritingAcme()  # type: ignore[attr-defined]
    night.clock.set(wall(NEW_YORK, "2026-11-26 07:31"))  # both are due: Acme's since 08:00 GMT
    dispatcher.run_once()
    assert [m["To"] for m in inbox.wait_for(4)[3:]] == [ROSA]
