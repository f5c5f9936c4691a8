"""`nightdesk webhooks add | list | remove | resume`, as an operator runs them for a client."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.settings import get_settings
from tests.support.cli import nightdesk
from tests.webhooks.conftest import ACME


@pytest.fixture(autouse=True)
def command_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, load_client: Callable[[str], None]
) -> None:
    load_client(ACME)
    monkeypatch.setenv("NIGHTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("NIGHTDESK_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()


def test_adding_a_webhook_shows_its_secret_once_and_the_list_never_does() -> None:
    # An address, not a name: these machines have no DNS, and a name is resolved and checked.
    code, output = nightdesk(
        "webhooks",
        "add",
        "acme-plumbing",
        "https://93.184.216.34/nd",
        "--event",
        "message.taken",
        "--event",
        "message.acknowledged",
    )
    assert code == 0, output
    lines = output.strip().splitlines()
    assert lines[0] == (
        "webhook 1 for acme-plumbing: message.taken, message.acknowledged "
        "to https://93.184.216.34/nd"
    )
    secret = lines[-1]
    assert secret.startswith("whsec_")

    code, output = nightdesk("webhooks", "list")
    assert code == 0
    assert "https://93.184.216.34/nd" in output
    assert "active" in output
    assert "message.acknowledged,message.taken" in output
    assert "whsec_" not in output


@pytest.mark.parametrize(
    ("url", "event", "problem"),
    [
        ("http://hooks.acme.example/nd", "message.taken", "use https://"),
        ("https://user:pw@hooks.acme.example/", "message.taken", "no credentials in the URL"),
        ("https://hooks.acme.example/nd", "message.eaten", "unknown event 'message.eaten'"),
        ("ftp://hooks.acme.example/", "message.taken", "not an https:// URL"),
        ("https://10.0.0.7/nd", "message.taken", "private, link-local or reserved"),
    ],
)
def test_a_webhook_that_cannot_work_is_refused_with_the_reason(
    url: str, event: str, problem: str
) -> None:
    code, output = nightdesk("webhooks", "add", "acme-plumbing", url, "--event", event)
    assert code == 1
    assert problem in output
    assert nightdesk("webhooks", "list")[1].strip() == "no webhooks"


def test_plain_http_is_accepted_only_to_this_machine_and_a_removed_webhook_is_gone() -> None:
    code, output = nightdesk("webhooks", "add", "acme-plumbing", "http://127.0.0.1:9000/hook")
    assert code == 0, output
    assert "every event" in output
    assert nightdesk("webhooks", "remove", "1") == (
        0,
        "removed webhook 1 (http://127.0.0.1:9000/hook)\n",
    )
    assert nightdesk("webhooks", "list")[1].strip() == "no webhooks"
    code, output = nightdesk("webhooks", "remove", "1")
    assert (code, "no webhook endpoint 1" in output) == (1, True)
