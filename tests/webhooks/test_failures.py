"""When a refused webhook is tried again, when its URL is paused, which URLs are accepted: plain
values and an injected now."""

from __future__ import annotations

import datetime as dt

import pytest

from app.webhooks.failures import AfterFailure, after_failure, delivered, url_problem

NOW = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)


def test_retries_follow_the_standard_webhooks_schedule_and_then_give_up() -> None:
    waits = [after_failure(n, NOW, NOW).retry_at for n in range(1, 9)]
    assert [w - NOW if w else None for w in waits] == [
        dt.timedelta(seconds=5),
        dt.timedelta(minutes=5),
        dt.timedelta(minutes=30),
        dt.timedelta(hours=2),
        dt.timedelta(hours=5),
        dt.timedelta(hours=10),
        dt.timedelta(hours=10),
        None,
    ]


def test_a_url_is_paused_once_it_has_failed_for_a_whole_day() -> None:
    almost = NOW - dt.timedelta(hours=23, minutes=59)
    assert not after_failure(3, almost, NOW).pause
    assert after_failure(3, NOW - dt.timedelta(days=1), NOW) == AfterFailure(
        NOW + dt.timedelta(minutes=30), pause=True
    )


def test_only_a_2xx_answer_counts_as_delivered() -> None:
    assert [delivered(s) for s in (200, 204, 299, 301, 400, 500)] == [
        True, True, True, False, False, False,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://crm.acme.example/hooks", True),
        ("http://127.0.0.1:8080/hook", True),
        ("http://localhost/hook", True),
        ("http://[::1]:9000/", True),
        ("http://crm.acme.example/hooks", False),
        ("http://10.0.0.5/hook", False),
        ("https://user:secret@crm.acme.example/", False),
        ("crm.acme.example/hooks", False),
    ],
)
def test_urls_are_https_or_plain_http_to_this_machine(url: str, accepted: bool) -> None:
    assert (url_problem(url) is None) is accepted
