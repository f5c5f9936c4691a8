"""When a refused webhook is tried again, when its URL is paused, which URLs are accepted: plain
values and an injected now."""

from __future__ import annotations

import datetime as dt
from ipaddress import ip_address

import pytest

from app.webhooks.failures import (
    AfterFailure,
    addresses_problem,
    after_failure,
    delivered,
    url_problem,
)

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
    ("url", "in_production", "in_development"),
    [
        ("https://crm.acme.example/hooks", True, True),
        ("https://1.1.1.1/hooks", True, True),
        ("http://127.0.0.1:8080/hook", False, True),
        ("http://localhost/hook", False, True),
        ("http://[::1]:9000/", False, True),
        ("https://127.0.0.1/hook", False, True),
        ("https://localhost/hook", False, True),
        ("http://crm.acme.example/hooks", False, False),
        ("http://10.0.0.5/hook", False, False),
        ("https://10.0.0.5/hook", False, False),
        ("https://192.168.1.20/hook", False, False),
        ("https://169.254.169.254/latest/meta-data", False, False),  # the cloud's metadata
        ("https://100.64.0.1/", False, False),  # carrier-grade NAT
        ("https://0.0.0.0/", False, False),
        ("https://[fd00::1]/", False, False),
        ("https://[fe80::1]/", False, False),
        ("https://[::ffff:10.0.0.1]/", False, False),  # a private address wearing IPv6
        ("https://[::ffff:127.0.0.1]/", False, True),
        ("https://203.0.113.9/", False, False),  # reserved for documentation
        ("https://224.0.0.1/", False, False),  # multicast
        ("https://user:secret@crm.acme.example/", False, False),
        ("https://crm.acme.example:notaport/", False, False),
        ("crm.acme.example/hooks", False, False),
    ],
)
def test_urls_are_https_to_public_addresses_and_loopback_only_in_development(
    url: str, in_production: bool, in_development: bool
) -> None:
    assert (url_problem(url, local_ok=False) is None) is in_production
    assert (url_problem(url, local_ok=True) is None) is in_development


def test_a_name_is_refused_when_any_address_it_resolves_to_is_private() -> None:
    public, private = ip_address("93.184.216.34"), ip_address("10.1.2.3")
    assert addresses_problem("crm.acme.example", [public], local_ok=False) is None
    problem = addresses_problem("crm.acme.example", [public, private], local_ok=False)
    assert problem is not None
    assert "10.1.2.3" in problem
    assert "private" in problem
    assert "does not resolve" in (addresses_problem("nowhere.example", [], local_ok=True) or "")
    assert addresses_problem("me.example", [ip_address("127.0.0.1")], local_ok=True) is None
    assert addresses_problem("me.example", [ip_address("127.0.0.1")], local_ok=False)
