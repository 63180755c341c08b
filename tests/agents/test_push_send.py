"""The renter's signed push (agents.renter.push.send) against a real HTTP server on a socket."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
from eth_account import Account

from agents.errors import RefusedError
from agents.market import Stamp
from agents.renter.push import PUSH_ATTEMPTS, send

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Server:
    """Answers each connection's first request with 200, except the first `drop`
    connections, which it closes without answering once the request is in."""

    def __init__(self, drop: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.drop = drop
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests += 1
                if self.requests > self.drop:
                    conn.sendall(OK)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def renter() -> Iterator[SimpleNamespace]:
    with httpx.Client() as http:
        yield SimpleNamespace(account=Account.create(), stamp=Stamp(), http=http)


def push(renter: SimpleNamespace, server: Server) -> None:
    send(
        renter,  # type: ignore[arg-type]
        f"http://127.0.0.1:{server.port}/v1/jobs",
        purpose="dcloud.test",
        body={"x": 1},
        who="provider p",
        what="the job",
        timeout_s=5,
    )


def test_a_connection_closed_without_an_answer_is_pushed_again(renter):
    server = Server(drop=1)
    try:
        push(renter, server)
    finally:
        server.close()
    assert server.requests == 2


def test_a_provider_that_never_answers_is_refused_after_the_last_attempt(renter):
    server = Server(drop=PUSH_ATTEMPTS)
    try:
        with pytest.raises(RefusedError, match="closed the connection without answering"):
            push(renter, server)
    finally:
        server.close()
    assert server.requests == PUSH_ATTEMPTS
