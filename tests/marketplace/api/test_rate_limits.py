"""The marketplace's rate limits: 429 with Retry-After per signer and per client address."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketplace.app import create_app
from marketplace.settings import Settings
from protocol.ratelimit import limiter_of
from tests.marketplace.api.conftest import account, registration, signed

REGISTER, HEARTBEAT = "dcloud/provider.register", "dcloud/provider.heartbeat"
HB = {"free": {"cpu": 4, "memory_mb": 8192, "gpu": 0, "disk_mb": 50_000}}
# Tiny budgets: a token comes back every 1000 s, so nothing refills during a test.
SLOW = 0.001


def _client(tmp_path, **limits: Any) -> TestClient:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}", batch_window_ms=0, **limits)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def market(tmp_path) -> Iterator[TestClient]:
    """Three signed requests per signer; no limit per client address."""
    with _client(tmp_path, rate_per_client=0, rate_per_signer=SLOW, rate_burst_per_signer=3) as c:
        yield c


def _beat(client: TestClient, name: str) -> Any:
    return client.post("/v1/providers/heartbeat", json=signed(account(name), HEARTBEAT, HB))


def _register(client: TestClient, name: str) -> Any:
    body = signed(account(name), REGISTER, registration(lat=48.1, lon=11.6))
    return client.post("/v1/providers", json=body)


def _assert_limited(r: Any) -> None:
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "RateLimitedError"
    assert "retry in" in r.json()["detail"]


def test_a_signer_over_its_budget_gets_429_while_another_signer_passes(market):
    assert _register(market, "flood").status_code < 300
    assert [_beat(market, "flood").status_code for _ in range(2)] == [200, 200]
    _assert_limited(_beat(market, "flood"))
    assert int(_beat(market, "flood").headers["retry-after"]) >= 900
    assert _register(market, "quiet").status_code < 300
    assert _beat(market, "quiet").status_code == 200


def test_requests_that_only_name_a_signer_do_not_spend_its_budget(market):
    victim = account("victim").address
    for _ in range(10):
        forged = signed(account("attacker"), HEARTBEAT, HB) | {"signer": victim}
        assert market.post("/v1/providers/heartbeat", json=forged).status_code == 401
        garbage = {"payload": "x", "signer": victim, "timestamp_ms": 1, "signature": "0x00"}
        assert market.post("/v1/providers/heartbeat", json=garbage).status_code in (401, 422)
    replay = signed(account("victim"), REGISTER, registration(lat=1.0, lon=2.0))
    assert market.post("/v1/providers", json=replay).status_code < 300
    for _ in range(5):  # a replayed signature is refused and costs the victim nothing
        assert market.post("/v1/providers", json=replay).status_code == 401
    assert [_beat(market, "victim").status_code for _ in range(2)] == [200, 200]
    _assert_limited(_beat(market, "victim"))


def test_a_client_address_over_its_budget_gets_429(tmp_path):
    with _client(tmp_path, rate_per_client=SLOW, rate_burst_per_client=3, rate_per_signer=0) as c:
        assert [c.get("/healthz").status_code for _ in range(3)] == [200] * 3
        _assert_limited(c.get("/healthz"))
        other = TestClient(c.app, client=("192.0.2.7", 4000), raise_server_exceptions=False)
        assert other.get("/healthz").status_code == 200


def test_zero_turns_the_limits_off(tmp_path):
    with _client(tmp_path, rate_per_client=0, rate_per_signer=0) as c:
        limiter = limiter_of(c.app)
        assert limiter.clients is None and limiter.signers is None
        assert _register(c, "busy").status_code < 300
        assert all(_beat(c, "busy").status_code == 200 for _ in range(150))


def test_the_key_tables_stay_bounded(tmp_path):
    with _client(tmp_path, rate_per_client=SLOW, rate_per_signer=SLOW, rate_limit_keys=4) as c:
        for i in range(12):
            peer = TestClient(c.app, client=(f"192.0.2.{i}", 4000), raise_server_exceptions=False)
            assert _register(peer, f"signer{i}").status_code < 300
        limiter = limiter_of(c.app)
        assert limiter.clients is not None and limiter.signers is not None
        assert len(limiter.clients) <= 4 and len(limiter.signers) <= 4


def test_the_openapi_document_lists_429_on_every_operation(tmp_path):
    with _client(tmp_path) as c:
        paths = c.app.openapi()["paths"]
    operations = [op for item in paths.values() for op in item.values()]
    assert operations
    for op in operations:
        assert "429" in op["responses"]
        assert "Retry-After" in op["responses"]["429"]["headers"]
