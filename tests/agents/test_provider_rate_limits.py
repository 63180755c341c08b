"""The provider agent's rate limits, in process: 429 with Retry-After per signer.

The app is the agent's own (``create_app``) over a real job store and configuration; the
signed reads tested here touch nothing else of the runner (no chain, no Docker), so a
plain object stands in for the rest of it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak
from fastapi.testclient import TestClient

from agents.provider.config import ProviderConfig
from agents.provider.server import create_app
from agents.provider.store import JobStore
from protocol import provider_api as api
from protocol.ratelimit import limiter_of
from protocol.signing import sign_request

SLOW = 0.001  # a token every 1000 s: nothing refills during a test


def _agent(tmp_path, **rates: Any) -> TestClient:
    cfg = ProviderConfig(
        marketplace_url="http://market.test",
        rpc_url="http://chain.test",
        endpoint="http://provider.test",
        listen_port=8800,
        location={"lat": 59.9, "lon": 10.7},
        caps={"cpu": 2, "memory_mb": 1024, "gpu": 0, "disk_mb": 1000},
        price_wei=1,
        images=["dcloud/busybox:1"],
        **({"rate_per_client": 0, "rate_per_signer": SLOW, "rate_burst_per_signer": 3} | rates),
    )
    runner = SimpleNamespace(cfg=cfg, store=JobStore(tmp_path / "jobs.db"))
    return TestClient(create_app(runner), raise_server_exceptions=False)  # type: ignore[arg-type]


def _read(client: TestClient, who: str, job_id: int = 7) -> Any:
    path = f"/v1/jobs/{job_id}"
    env = sign_request(
        Account.from_key(keccak(text=who)),
        purpose=api.FETCH,
        payload={"method": "GET", "path": path},
    )
    headers = {
        api.SIGNER_HEADER: env["signer"],
        api.TIMESTAMP_HEADER: str(env["timestamp_ms"]),
        api.SIGNATURE_HEADER: env["signature"],
    }
    return client.get(path, headers=headers)


def test_a_signer_flooding_the_agent_gets_429_while_another_signer_passes(tmp_path):
    agent = _agent(tmp_path)
    assert [_read(agent, "flood").status_code for _ in range(3)] == [404] * 3  # no such job
    r = _read(agent, "flood")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "RateLimitedError"
    assert _read(agent, "quiet").status_code == 404


def test_a_client_address_flooding_the_agent_gets_429(tmp_path):
    agent = _agent(tmp_path, rate_per_client=SLOW, rate_burst_per_client=2, rate_per_signer=0)
    assert [_read(agent, f"renter{i}").status_code for i in range(2)] == [404, 404]
    r = _read(agent, "renter2")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_the_agents_key_tables_stay_bounded(tmp_path):
    agent = _agent(tmp_path, rate_per_client=SLOW, rate_limit_keys=3)
    for i in range(10):
        peer = TestClient(agent.app, client=(f"192.0.2.{i}", 4000), raise_server_exceptions=False)
        assert _read(peer, f"renter{i}").status_code == 404
    limiter = limiter_of(agent.app)
    assert limiter.clients is not None and limiter.signers is not None
    assert len(limiter.clients) <= 3 and len(limiter.signers) <= 3
