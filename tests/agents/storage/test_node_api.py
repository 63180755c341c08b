"""A storage node process over HTTP: signed shard requests, owners, quota, proofs, CLI."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from agents.storage.files.transport import NodeClient, NodeRefused, ShardMissing
from agents.storage.wire import shard_headers
from protocol import merkle
from protocol.storage import CONTENT_SHA256_HEADER
from tests.agents.storage.network import ROOT, Network, Node, account, env

pytestmark = pytest.mark.integration

ALICE, BOB = account("alice"), account("bob")


def sid(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()[:32]


@pytest.fixture(scope="module")
def small_node(tmp_path_factory) -> Iterator[Node]:
    """A node with a 1 MB quota and no marketplace."""
    node = Node(
        tmp_path_factory.mktemp("small-node"),
        name="small-node",
        market=None,
        quota=10**6,
        place=(45.0, 7.0),
    )
    node.start()
    node.wait_ready()
    yield node
    node.stop()


@pytest.fixture(scope="module")
def alice() -> Iterator[NodeClient]:
    client = NodeClient(ALICE)
    yield client
    client.close()


@pytest.fixture(scope="module")
def bob() -> Iterator[NodeClient]:
    client = NodeClient(BOB)
    yield client
    client.close()


def test_owner_stores_reads_and_deletes_a_shard(small_node, alice):
    data = b"shard bytes" * 100
    alice.put(small_node.endpoint, sid("a"), data)
    assert alice.get(small_node.endpoint, sid("a")) == data
    info = alice.meta(small_node.endpoint, sid("a"), verify=True)
    assert (info.size, info.sha256, info.verified) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
        True,
    )
    assert small_node.health()["shards"] == 1
    assert alice.delete(small_node.endpoint, sid("a")) is True
    assert alice.delete(small_node.endpoint, sid("a")) is False
    assert small_node.health()["used_bytes"] == 0


def test_another_account_can_neither_read_nor_delete(small_node, alice, bob):
    alice.put(small_node.endpoint, sid("b"), b"mine")
    for call in (bob.get, bob.delete):
        with pytest.raises(NodeRefused) as err:
            call(small_node.endpoint, sid("b"))
        assert err.value.status == 403
    assert alice.get(small_node.endpoint, sid("b")) == b"mine"


def test_writes_past_the_quota_are_refused_with_507(small_node, alice):
    with pytest.raises(NodeRefused, match="quota is full") as err:
        alice.put(small_node.endpoint, sid("big"), b"\0" * (10**6 + 1))
    assert err.value.status == 507
    with pytest.raises(ShardMissing):
        alice.get(small_node.endpoint, sid("big"))


def test_unsigned_replayed_and_forged_requests_are_refused(small_node, alice):
    url = f"{small_node.endpoint}/v1/shards/{sid('c')}"
    alice.put(small_node.endpoint, sid("c"), b"x")
    assert httpx.get(url).status_code == 401
    headers = shard_headers(ALICE, "GET", f"/v1/shards/{sid('c')}")
    assert httpx.get(url, headers=headers).status_code == 200
    replay = httpx.get(url, headers=headers)
    assert replay.status_code == 401 and "replay" in replay.json()["detail"]
    other_path = shard_headers(ALICE, "GET", f"/v1/shards/{sid('d')}")
    assert httpx.get(url, headers=other_path).status_code == 401


def test_body_other_than_the_signed_one_is_refused(small_node, alice):
    path = f"/v1/shards/{sid('e')}"
    signed_sha = hashlib.sha256(b"good").hexdigest()
    headers = shard_headers(ALICE, "PUT", path, sha256=signed_sha, size=4)
    headers[CONTENT_SHA256_HEADER] = signed_sha
    r = httpx.put(small_node.endpoint + path, content=b"evil", headers=headers)
    assert r.status_code == 422 and "hashes to" in r.json()["detail"]
    with pytest.raises(ShardMissing):
        alice.get(small_node.endpoint, sid("e"))


def test_bad_shard_id_is_a_validation_error(small_node):
    assert httpx.get(f"{small_node.endpoint}/v1/shards/NOT-AN-ID").status_code == 422


def test_proof_of_a_chunk_verifies_against_the_shards_merkle_root(small_node, alice):
    data = bytes(range(256)) * 20  # 5 chunks of 1 KiB
    alice.put(small_node.endpoint, sid("f"), data)
    body = alice.proof(small_node.endpoint, sid("f"), 3)
    leaves = merkle.chunk_leaves(data)
    assert body["chunks"] == 5 and body["root"] == "0x" + merkle.root(leaves).hex()
    chunk = base64.b64decode(body["chunk"])
    assert chunk == data[3 * 1024 : 4 * 1024]
    proof = [bytes.fromhex(p[2:]) for p in body["proof"]]
    assert merkle.verify(proof, merkle.root(leaves), merkle.chunk_leaf(3, chunk))
    with pytest.raises(NodeRefused, match="has 5 chunks"):
        alice.proof(small_node.endpoint, sid("f"), 5)


def test_status_shows_quota_use_and_that_it_runs(small_node):
    out = subprocess.run(
        [sys.executable, "-m", "agents", "node", "status", "--home", str(small_node.home)],
        env=env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert small_node.address in out
    assert "running (pid" in out and "1.0 MB" in out


def test_init_twice_is_refused_and_keeps_the_settings(small_node):
    before = (small_node.home / "node.json").read_text()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "agents",
            "node",
            "init",
            "--home",
            str(small_node.home),
            "--quota",
            "10MB",
            "--lat",
            "1",
            "--lon",
            "2",
        ],
        env=env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "already exists" in r.stderr
    assert (small_node.home / "node.json").read_text() == before


def test_init_from_the_command_line_then_the_node_registers(tmp_path, network: Network):
    home = tmp_path / "cli-node"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "agents",
            "node",
            "init",
            "--home",
            str(home),
            "--quota",
            "10MB",
            "--lat",
            "-1.29",
            "--lon",
            "36.82",
            "--marketplace",
            network.market.url,
        ],
        env=env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "10.0 MB" in r.stdout
    cfg = (home / "node.json").read_text()
    assert '"quota_bytes": 10000000' in cfg
