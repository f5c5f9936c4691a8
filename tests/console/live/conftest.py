"""A real server for what needs one: server-sent events (the test client waits for a response
to end) and a real browser. The app's public URL is the server's, so cookies and links work."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.support.callbacks import ToTheApp
from tests.support.live import free_socket, serving, url_of


@pytest.fixture
def live_socket() -> Iterator[socket.socket]:
    sock = free_socket()
    yield sock
    sock.close()


@pytest.fixture
def settings(settings: Settings, live_socket: socket.socket) -> Settings:
    """The app's public URL is the live server's, so its cookies and links work there."""
    return settings.model_copy(update={"public_url": url_of(live_socket)})


@pytest.fixture
def live_url(
    app: FastAPI, live_socket: socket.socket, console_client: TestClient, callbacks: ToTheApp
) -> Iterator[str]:
    with serving(app, live_socket) as url:
        yield url
