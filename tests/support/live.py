"""The app served by uvicorn on a loopback port, for what needs a real server: server-sent
events (the test client waits for a response to end) and a real browser."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import httpx
import uvicorn
from fastapi import FastAPI


def free_socket() -> socket.socket:
    """A socket bound to a free loopback port, to hand to the server later (so the port is
    known before the app is built, for its public URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serving(
    app: FastAPI, sock: socket.socket, lifespan: Literal["on", "off"] = "off"
) -> Iterator[str]:
    """Serve `app` on `sock` in a thread until the block ends. Its lifespan is off by default:
    the tests' TestClient runs it already, and two would close the database twice."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan=lifespan, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.005)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Event:
    name: str
    data: str
    at: float  # time.monotonic() when it arrived


class EventStream:
    """A server-sent events stream read on a thread of its own; tests wait on what arrives."""

    def __init__(self, base_url: str, cookies: httpx.Cookies, path: str) -> None:
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._stop = threading.Event()
        # A client of its own: closing it ends the stream, whatever it is waiting for.
        self._client = httpx.Client(base_url=base_url, cookies=cookies)
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._thread.start()

    def _read(self, path: str) -> None:
        name, data = "message", []
        try:
            with self._client.stream("GET", path, timeout=httpx.Timeout(5, read=60)) as response:
                stream = response.extensions.get("network_stream")
                self._socket = stream.get_extra_info("socket") if stream else None
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
                    elif line == "":
                        if data:
                            self._events.put(Event(name, "\n".join(data), time.monotonic()))
                        name, data = "message", []
        except (httpx.HTTPError, RuntimeError, OSError):
            pass
        finally:
            self._events.put(None)

    def next(self, name: str, containing: str = "", timeout: float = 5.0) -> Event:
        """The next `name` event whose data contains `containing`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                raise AssertionError("the stream ended")
            if event.name == name and containing in event.data:
                return event
        raise AssertionError(f"no {name!r} event with {containing!r} within {timeout} s")

    def close(self) -> None:
        """The browser tab closes: its connection is cut, as a closing tab cuts it."""
        self._stop.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._client.close()
