"""/docs: the API's documentation works on a network that reaches nothing but Nightdesk."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.conftest import PUBLIC_URL


def test_the_docs_page_loads_everything_from_nightdesk_itself(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.status_code == 200
    absolute = re.findall(r"""https?://[^\s"'<>)]+""", page.text)
    assert [url for url in absolute if not url.startswith(PUBLIC_URL)] == []
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert {urlsplit(a).path for a in assets} >= {
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    }
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: it is off


def test_the_openapi_document_describes_the_api_and_its_bearer_keys(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    assert {
        "/api/v1/messages", "/api/v1/messages.csv", "/api/v1/messages/{message_id}",
        "/api/v1/messages/{message_id}/acknowledge", "/api/v1/messages/{message_id}/close",
        "/api/v1/calls/{sid}", "/api/v1/client",
    } <= set(schema["paths"])  # fmt: skip
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert not any(path.startswith("/portal") for path in schema["paths"])
