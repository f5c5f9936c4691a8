"""Where the fake Twilio sends its signed callbacks in tests that run the app in-process."""

from __future__ import annotations

from fastapi.testclient import TestClient


class ToTheApp:
    """Into the app under test, through `client` once the test sets it."""

    client: TestClient | None = None

    def __call__(self, url: str, params: dict[str, str], headers: dict[str, str]) -> None:
        if self.client is not None:  # after the test, late callbacks have nowhere to go
            self.client.post(url, data=params, headers=headers)
