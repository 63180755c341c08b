"""A storage node's rate limits, in process: 429 with Retry-After per signer and address."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.testclient import TestClient

from agents.storage.node.server import create_node_app
from agents.storage.node.store import ShardStore
from agents.storage.wire import shard_headers
from protocol.ratelimit import Limiter, limiter_of
from protocol.storage import CONTENT_SHA256_HEADER, SIGNER_HEADER
from tests.agents.storage.network import account

SLOW = 0.001  # a token every 1000 s: nothing refills during a test


def _node(tmp_path, **rates: Any) -> TestClient:
    limits = {"per_client": 0.0, "per_client_burst": 1, "per_signer": SLOW, "per_signer_burst": 3}
    store = ShardStore(tmp_path / "shards", quota_bytes=10**7, fsync=False)
    app = create_node_app(
        store,
        address=account("node").address,
        endpoint="http://node.test",
        limiter=Limiter.of(**(limits | rates)),
    )
    return TestClient(app, raise_server_exceptions=False)


def _put(client: TestClient, who: str, label: str) -> Any:
    data = label.encode() * 10
    sha = hashlib.sha256(data).hexdigest()
    path = f"/v1/shards/{hashlib.sha256(label.encode()).hexdigest()[:32]}"
    headers = shard_headers(account(who), "PUT", path, sha256=sha, size=len(data))
    headers[CONTENT_SHA256_HEADER] = sha
    return client.put(path, content=data, headers=headers)


def test_a_signer_flooding_a_node_gets_429_while_another_signer_passes(tmp_path):
    node = _node(tmp_path)
    assert [_put(node, "flood", f"s{i}").status_code for i in range(3)] == [201] * 3
    r = _put(node, "flood", "s3")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "RateLimitedError"
    assert _put(node, "quiet", "q0").status_code == 201


def test_requests_naming_a_signer_without_its_signature_cost_it_nothing(tmp_path):
    node = _node(tmp_path)
    victim = account("victim").address
    for i in range(10):
        path = f"/v1/shards/{'ab' * 16}"
        forged = shard_headers(account("attacker"), "GET", path) | {SIGNER_HEADER: victim}
        assert node.get(path, headers=forged).status_code == 401
        assert _put(node, "attacker", f"a{i}").status_code in (201, 429)
    assert [_put(node, "victim", f"v{i}").status_code for i in range(3)] == [201] * 3
    assert _put(node, "victim", "v3").status_code == 429


def test_a_client_address_flooding_a_node_gets_429(tmp_path):
    node = _node(tmp_path, per_client=SLOW, per_client_burst=2, per_signer=0.0)
    assert [node.get("/v1/health").status_code for _ in range(2)] == [200, 200]
    r = node.get("/v1/health")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_the_nodes_key_tables_stay_bounded(tmp_path):
    node = _node(tmp_path, per_client=SLOW, per_client_burst=100, max_keys=3)
    for i in range(10):
        peer = TestClient(node.app, client=(f"192.0.2.{i}", 4000), raise_server_exceptions=False)
        assert _put(peer, f"renter{i}", f"r{i}").status_code == 201
    limiter = limiter_of(node.app)
    assert limiter.clients is not None and limiter.signers is not None
    assert len(limiter.clients) <= 3 and len(limiter.signers) <= 3
