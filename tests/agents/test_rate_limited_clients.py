"""Clients meet a 429 politely: they wait Retry-After and retry a few times, and say
plainly that the service is rate limiting them when the wait is too long."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi.testclient import TestClient

from agents.errors import RefusedError
from agents.market import MarketClient
from agents.storage.files.transport import NodeClient, NodeRefused
from agents.storage.node.server import create_node_app
from agents.storage.node.store import ShardStore
from marketplace.app import create_app
from marketplace.settings import Settings
from protocol.ratelimit import Limiter
from tests.marketplace.api.conftest import account, registration

REGISTER, HEARTBEAT = "dcloud/provider.register", "dcloud/provider.heartbeat"
HB = {"free": {"cpu": 4, "memory_mb": 8192, "gpu": 0, "disk_mb": 50_000}}


@contextmanager
def _market(tmp_path, *, rate: float) -> Iterator[MarketClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
        rate_per_client=0,
        rate_per_signer=rate,
        rate_burst_per_signer=1,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        client = MarketClient("http://testserver", account("renter"))
        client.http = http
        yield client


def test_market_client_waits_retry_after_and_retries(tmp_path):
    with _market(tmp_path, rate=1.0) as client:  # one signed request a second
        client.post_signed("/v1/providers", purpose=REGISTER, payload=registration(lat=1, lon=2))
        answer = client.post_signed("/v1/providers/heartbeat", purpose=HEARTBEAT, payload=HB)
        assert answer["address"] == account("renter").address


def test_market_client_says_it_is_rate_limited_when_the_wait_is_long(tmp_path):
    with _market(tmp_path, rate=0.001) as client:
        client.post_signed("/v1/providers", purpose=REGISTER, payload=registration(lat=1, lon=2))
        with pytest.raises(RefusedError, match="rate limiting this key"):
            client.post_signed("/v1/providers/heartbeat", purpose=HEARTBEAT, payload=HB)


@contextmanager
def _node(tmp_path, *, rate: float) -> Iterator[str]:
    """A storage node app under uvicorn in a thread, on a free port of 127.0.0.1."""
    app = create_node_app(
        ShardStore(tmp_path / "shards", quota_bytes=10**7, fsync=False),
        address=account("node").address,
        endpoint="http://node.test",
        limiter=Limiter.of(per_client=0, per_client_burst=1, per_signer=rate, per_signer_burst=1),
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    started = threading.Event()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        started.wait(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _shard(label: str) -> tuple[str, bytes]:
    return hashlib.sha256(label.encode()).hexdigest()[:32], label.encode() * 10


def test_node_client_waits_retry_after_and_retries(tmp_path):
    client = NodeClient(account("renter"))
    with _node(tmp_path, rate=1.0) as endpoint:
        for label in ("a", "b"):  # the second is refused once, then stored
            client.put(endpoint, *_shard(label))
        assert client.get(endpoint, _shard("b")[0]) == _shard("b")[1]
    client.close()


def test_node_client_says_it_is_rate_limited_when_the_wait_is_long(tmp_path):
    client = NodeClient(account("renter"))
    with _node(tmp_path, rate=0.001) as endpoint:
        client.put(endpoint, *_shard("a"))
        with pytest.raises(NodeRefused, match="rate limiting this key") as refused:
            client.put(endpoint, *_shard("b"))
        assert refused.value.status == 429
    client.close()
