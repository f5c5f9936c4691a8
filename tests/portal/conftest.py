"""The portal's tests: two clients side by side, and the owner of the first, signed in through
the sign-in form."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.accounts.models import Role
from tests.accounts.conftest import AddPerson, sign_in
from tests.accounts.conftest import add_person as add_person
from tests.support.clients import Clients
from tests.support.clients import clients as clients

OWNER = "owner@harbour.test"


@pytest.fixture
def owner(client: TestClient, clients: Clients, add_person: AddPerson) -> TestClient:
    """The browser of Harbour Plumbing's owner, Hana, signed in."""
    add_person(OWNER, Role.client, client="harbour-plumbing", name="Hana Owner")
    assert sign_in(client, OWNER).headers["location"] == "/portal"
    return client
