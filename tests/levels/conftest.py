"""Two clients side by side (tests/support/clients.py) and people who sign in."""

from tests.accounts.conftest import add_person  # noqa: F401 - a fixture
from tests.support.clients import clients  # noqa: F401 - a fixture
