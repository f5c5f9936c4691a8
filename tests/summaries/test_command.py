"""`nightdesk summaries send`, as an operator runs it: the due summaries, or with --now each
client's summary up to now; once, however often it is run."""

from __future__ import annotations

import datetime as dt

import pytest

from app.settings import get_settings
from app.timeutil import utcnow
from tests.summaries.conftest import ACCOUNTS, OLIVE, Night, text_of
from tests.support.cli import nightdesk
from tests.support.smtp import SmtpInbox, free_port


@pytest.fixture
def command_env(monkeypatch: pytest.MonkeyPatch, night: Night, inbox: SmtpInbox) -> None:
    """The command pointed at the test's database and SMTP server (it keeps its own clock)."""
    for name, value in {
        "NIGHTDESK_DATABASE_URL": night.settings.database_url,
        "NIGHTDESK_SMTP_URL": inbox.url,
        "NIGHTDESK_PUBLIC_URL": "https://nightdesk.test",
        "NIGHTDESK_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.mark.usefixtures("command_env")
def test_send_now_emails_the_summary_up_to_now_and_running_it_again_sends_nothing_more(
    night: Night, inbox: SmtpInbox
) -> None:
    message = night.message(utcnow() - dt.timedelta(minutes=2), name="Jo Bloggs")

    code, output = nightdesk("summaries", "send", "--client", "acme-plumbing", "--now")
    assert code == 0, output
    assert "acme-plumbing: 1 message from " in output
    assert "for 2 recipients" in output
    assert "2 emails handed to the mail server" in output
    emails = inbox.wait_for(2)
    assert sorted(m["To"] for m in emails) == [ACCOUNTS, OLIVE]
    assert f"https://nightdesk.test/portal/messages/{message}" in text_of(emails[0])

    code, output = nightdesk("summaries", "send", "--client", "acme-plumbing", "--now")
    assert code == 0, output
    assert "nothing new since the last summary" in output
    code, output = nightdesk("summaries", "send", "--client", "acme-plumbing")
    assert (code, output.strip()) == (0, "no summary is due (--now sends one anyway)")
    assert len(inbox.messages) == 2


@pytest.mark.usefixtures("command_env")
def test_asking_for_a_client_without_a_summary_says_so() -> None:
    code, output = nightdesk("summaries", "send", "--client", "no-such-client")
    assert code == 1
    assert "no client 'no-such-client' with a summary in its flow file" in output


@pytest.mark.usefixtures("command_env")
def test_with_the_mail_server_down_the_command_says_the_dispatcher_will_retry(
    night: Night, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTDESK_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    night.message(utcnow() - dt.timedelta(minutes=2), name="Jo Bloggs")
    code, output = nightdesk("summaries", "send", "--client", "acme-plumbing", "--now")
    assert code == 0, output
    assert "0 emails handed to the mail server; 2 left for the dispatcher to retry" in output
