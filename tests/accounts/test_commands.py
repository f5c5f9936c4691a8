"""`nightdesk users add` and `nightdesk api-keys …` as an administrator uses them."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.accounts.conftest import form_token
from tests.support.cli import nightdesk

pytestmark = pytest.mark.usefixtures("flows_dir", "demo_clients")


def test_adding_a_pa_prints_a_sign_in_link_on_the_last_line_that_signs_them_in(
    client: TestClient,
) -> None:
    code, output = nightdesk("users", "add", "sam@nightdesk.test", "--role", "pa", "--name", "Sam")

    assert code == 0, output
    link = output.strip().splitlines()[-1]
    assert link.startswith("http://127.0.0.1:8000/login/link/")
    path = link.removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    signed_in = client.post(path, data={"csrf_token": form_token(page)}, follow_redirects=False)
    assert signed_in.headers["location"] == "/console"


def test_a_client_user_needs_a_client_that_exists(client: TestClient) -> None:
    code, output = nightdesk("users", "add", "owner@acme.test", "--role", "client")
    assert code == 1
    assert "needs --client" in output

    code, output = nightdesk(
        "users", "add", "owner@acme.test", "--role", "client", "--client", "acme"
    )
    assert code == 1
    assert "no client 'acme'" in output

    code, output = nightdesk(
        "users", "add", "owner@acme.test", "--role", "client", "--client", "acme-plumbing"
    )
    assert code == 0, output
    code, output = nightdesk("users", "add", "OWNER@acme.test", "--role", "pa")
    assert code == 1
    assert "already an account" in output


def test_a_password_can_be_set_from_standard_input_instead_of_a_link(client: TestClient) -> None:
    code, output = nightdesk(
        "users", "add", "sup@nightdesk.test", "--role", "supervisor", "--password-stdin",
        stdin="a long enough password\n",
    )  # fmt: skip
    assert code == 0, output
    assert "/login/link/" not in output


def test_an_api_key_is_shown_once_listed_by_its_prefix_and_can_be_revoked() -> None:
    code, output = nightdesk("api-keys", "create", "acme-plumbing", "--name", "CRM sync")
    assert code == 0, output
    key = output.strip().splitlines()[-1]
    assert key.startswith("ndk_")

    code, listing = nightdesk("api-keys", "list", "--client", "acme-plumbing")
    assert "CRM sync" in listing
    assert key[:12] in listing
    assert key not in listing  # never shown again

    code, output = nightdesk("api-keys", "revoke", "1")
    assert code == 0
    assert "REVOKED" in nightdesk("api-keys", "list")[1]
    assert nightdesk("api-keys", "revoke", "99")[0] == 1
