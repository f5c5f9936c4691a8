"""The contacts' side shares the dispatch tests' desk: a client, its flow, and the dispatcher."""

from tests.dispatch.conftest import desk as desk
