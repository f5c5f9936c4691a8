"""schemathesis against /api/v1's OpenAPI document: whatever a client's system sends, within the
document or just outside it, the API answers without a server error."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.support.clients import Clients, bearer

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 8}  # an operation: ~10 s in all


def test_no_request_the_schema_describes_gets_a_server_error(
    app: FastAPI, clients: Clients
) -> None:
    for name in ("Kim", "Lee"):  # messages 1 and 2, on calls CA…1 and CA…2: real ones to find
        clients.leave_message("harbour-plumbing", name=name)
    clients.leave_message("bright-dental", name="Bo")  # and one of another client's
    key = clients.api_key("harbour-plumbing")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex="^/api/v1/")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 8  # every operation readable, all of them fuzzed

    for operation in operations:
        for mode, examples in EXAMPLES.items():
            _no_server_error(operation.as_strategy(generation_mode=mode), key, examples)


def _no_server_error(cases: SearchStrategy[Case[Any]], key: str, examples: int) -> None:
    @given(cases)
    @settings(
        max_examples=examples,
        derandomize=True,  # the same requests every run
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def request(case: Case[Any]) -> None:
        case.call_and_validate(headers=bearer(key), checks=[not_a_server_error])

    request()
