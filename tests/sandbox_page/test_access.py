"""Who may see the sandbox page without signing in: the developer on their own machine only."""

from __future__ import annotations

import pytest

from app.sandbox_page.access import open_without_sign_in

LOCAL = {"host": "127.0.0.1:8000"}


@pytest.mark.parametrize(
    ("client_host", "host"),
    [("127.0.0.1", "127.0.0.1:8000"), ("::1", "[::1]:8000"), ("127.0.0.1", "localhost:8000"),
     ("127.0.0.1", "LOCALHOST"), ("::1", "[::1]")],
)  # fmt: skip
def test_a_developers_own_browser_needs_no_sign_in(client_host: str, host: str) -> None:
    assert open_without_sign_in("development", client_host, {"host": host})


def test_outside_development_everyone_signs_in() -> None:
    assert not open_without_sign_in("staging", "127.0.0.1", LOCAL)
    assert not open_without_sign_in("production", "127.0.0.1", LOCAL)


@pytest.mark.parametrize("client_host", ["203.0.113.7", "10.0.0.2", "testclient", "", None])
def test_another_machine_signs_in(client_host: str | None) -> None:
    assert not open_without_sign_in("development", client_host, LOCAL)


@pytest.mark.parametrize(
    "header", ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip"]
)
def test_a_proxy_on_the_same_machine_does_not_make_its_visitors_local(header: str) -> None:
    assert not open_without_sign_in("development", "127.0.0.1", {**LOCAL, header: "203.0.113.7"})


@pytest.mark.parametrize(
    "host", ["rebound.example:8000", "nightdesk.test", "127.0.0.1.evil.test", ""]
)
def test_another_name_for_this_machine_signs_in(host: str) -> None:
    """DNS rebinding: another site whose name resolves to 127.0.0.1 reads as that site."""
    assert not open_without_sign_in("development", "127.0.0.1", {"host": host})
