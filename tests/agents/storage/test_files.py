"""Files through real storage-node processes: round trips, nodes dying, corruption, repair."""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path

import pytest

from agents.errors import RefusedError, UserError, VerificationError
from agents.storage.files.client import StorageClient, Target
from agents.storage.files.fetch import NotEnoughShardsError
from agents.storage.files.manifest import Manifest
from agents.storage.files.repair import health, repair_object
from agents.storage.files.transport import NodeRefused
from tests.agents.storage.conftest import make_client
from tests.agents.storage.network import Network, Node, free_port

pytestmark = pytest.mark.integration

SEG = 64 * 1024  # small segments: several per object without big files


def blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def holders(network: Network, m: Manifest, segment: int = 0) -> list[Node]:
    """The nodes of a segment's shards, in shard order."""
    return [network.by_address(s.node) for s in m.segments[segment].shards]


def used_bytes(network: Network) -> int:
    return sum(n.health()["used_bytes"] for n in network.nodes if n.running)


@pytest.mark.parametrize("size", [0, 1, SEG - 16, SEG, 3 * SEG + 12_345])
def test_round_trip(client, tmp_path, size):
    data = blob(size, size)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    m = client.put(src, name=f"rt-{size}", k=4, n=6, segment_bytes=SEG)
    assert len(m.segments) == max(1, -(-size // SEG))
    for seg in m.segments:
        assert len({s.node for s in seg.shards}) == 6  # no two shards of a segment on one node
    client.get(f"rt-{size}", tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data


def test_shards_are_spread_over_regions(client, network):
    m = client.put_bytes(blob(1000, 1), name="spread", k=8, n=12)
    regions = {str(n["address"]): n["region"] for n in network.market.nodes()}
    assert len({regions[s.node] for s in m.segments[0].shards}) >= 10


@pytest.mark.slow
def test_100_mb_round_trip_with_default_code(client, tmp_path):
    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        for i in range(25):
            fh.write(blob(4 * 10**6, i))
    m = client.put(src)
    assert (m.k, m.n, len(m.segments)) == (8, 12, 24)
    client.get("big.bin", tmp_path / "big.out")
    assert _same_file(src, tmp_path / "big.out")


def test_any_n_minus_k_nodes_down_still_readable(client, network):
    data = blob(3 * SEG + 5, 7)
    m = client.put_bytes(data, name="survivor", k=4, n=6, segment_bytes=SEG)
    combos = [holders(network, m)[:2], holders(network, m)[3:5]]  # data shards; data + parity
    for down in combos:
        with network.down(down):
            assert client.get_bytes("survivor") == data


def test_data_shard_nodes_down_with_default_code_reports_them(client, network):
    data = blob(200_000, 8)
    m = client.put_bytes(data, name="default-code", k=8, n=12)
    down = holders(network, m)[:4]  # all shards the reader prefers first
    with network.down(down):
        result_path = client.home / "out"
        result = client.get("default-code", result_path)
        assert result_path.read_bytes() == data
    assert set(result.failed_nodes) <= {n.address for n in down}
    assert result.failed_nodes
    for address in result.failed_nodes:
        assert network.market.node(address)["fetch_failed"] >= 1


def test_fewer_than_k_nodes_is_a_clear_error_and_writes_nothing(client, network, tmp_path):
    m = client.put_bytes(blob(5000, 9), name="fragile", k=2, n=3)
    out = tmp_path / "keep.txt"
    out.write_text("precious")
    with (
        network.down(holders(network, m)[:2]),
        pytest.raises(NotEnoughShardsError, match="only 1 intact shards"),
    ):
        client.get("fragile", out, overwrite=True)
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")] == []


def test_corrupt_shard_is_detected_skipped_and_reported(client, network):
    data = blob(50_000, 10)
    m = client.put_bytes(data, name="rotten", k=4, n=6)
    shard = m.segments[0].shards[0]
    bad = network.by_address(shard.node)
    path = bad.home / "shards" / shard.id[:2] / shard.id
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0xFF
    path.write_bytes(bytes(raw))
    result = client.get("rotten", client.home / "rotten.out")
    assert (client.home / "rotten.out").read_bytes() == data
    assert result.corrupt_nodes == [bad.address]
    assert network.market.node(bad.address)["fetch_corrupt"] >= 1
    (h,) = health(client, "rotten")
    assert h.segments[0].problems == {0: "corrupt"}


def test_repair_restores_n_healthy_shards_on_other_nodes(client, network):
    data = blob(3 * SEG, 11)
    m = client.put_bytes(data, name="mended", k=4, n=6, segment_bytes=SEG)
    down = holders(network, m, 1)[:2]
    before = {s.node for seg in m.segments for s in seg.shards}
    with network.down(down):
        (h,) = health(client, "mended")
        assert h.min_healthy == 4
        result = repair_object(client, "mended")
        assert result.failures == []
        assert result.health_after == 6
        (h,) = health(client, "mended")
        assert h.min_healthy == 6
        fixed = client.store.find("mended")
        for seg in fixed.segments:
            nodes = {s.node for s in seg.shards}
            assert len(nodes) == 6 and not nodes & {n.address for n in down}
        assert client.get_bytes("mended") == data
        assert fixed.retired  # the old shards wait on their dead nodes
    network.wait_online()
    result = repair_object(client, "mended")  # the old nodes are back: their shards go
    assert client.store.find("mended").retired == []
    for node in down:
        ids = {p.name for p in node.shard_files()}
        assert not ids & {s.id for s in m.segments[1].shards if s.node == node.address}
    assert before  # the original placement was recorded


def test_repair_with_nothing_missing_changes_nothing(client):
    m = client.put_bytes(blob(10, 12), name="fine", k=2, n=3)
    result = repair_object(client, "fine")
    assert (result.segments_repaired, result.shards_rebuilt) == (0, 0)
    assert client.store.find("fine").segments == m.segments


def test_wrong_key_is_a_clear_error_and_loses_nothing(client, network, tmp_path):
    a = client.put_bytes(b"A" * 1000, name="a", k=2, n=3)
    b = client.put_bytes(b"B" * 1000, name="b", k=2, n=3)
    keyring = client.store.keyring
    saved = (keyring / f"{a.object_id}.key").read_bytes()
    (keyring / f"{a.object_id}.key").write_bytes((keyring / f"{b.object_id}.key").read_bytes())
    with pytest.raises(VerificationError, match="wrong key"):
        client.get("a", tmp_path / "a.out")
    assert not (tmp_path / "a.out").exists()
    # a key that opens but is not the object's: the data's GCM tag refuses it
    client.store.store_key(a.object_id, os.urandom(32))
    with pytest.raises(VerificationError, match="does not decrypt"):
        client.get("a", tmp_path / "a.out")
    assert not (tmp_path / "a.out").exists()
    (keyring / f"{a.object_id}.key").write_bytes(saved)
    assert client.get_bytes("a") == b"A" * 1000


def test_tampered_manifest_is_refused_and_its_shards_stay(client, network):
    m = client.put_bytes(b"T" * 3000, name="tampered", k=2, n=3)
    path = client.store.objects / f"{m.object_id}.json"
    body = json.loads(path.read_text())
    body["segments"][0]["shards"][0]["node"] = body["segments"][0]["shards"][1]["node"]
    path.write_text(json.dumps(body))
    for action in (lambda: client.get_bytes("tampered"), lambda: client.rm("tampered")):
        with pytest.raises(VerificationError, match="changed outside dcloud"):
            action()
    shard = m.segments[0].shards[0]
    assert any(p.name == shard.id for p in network.by_address(shard.node).shard_files())


def test_missing_file_and_unknown_object_are_user_errors(client, tmp_path):
    with pytest.raises(UserError, match="no file at"):
        client.put(tmp_path / "nothing-here")
    with pytest.raises(UserError, match="no stored object named 'ghost'"):
        client.get("ghost", tmp_path / "ghost")


def test_existing_output_is_not_overwritten_without_asking(client, tmp_path):
    client.put_bytes(b"new", name="clash", k=2, n=3)
    out = tmp_path / "clash"
    out.write_text("old")
    with pytest.raises(UserError, match="--overwrite"):
        client.get("clash", out)
    assert out.read_text() == "old"
    client.get("clash", out, overwrite=True)
    assert out.read_bytes() == b"new"


def test_same_name_twice_is_refused(client):
    client.put_bytes(b"1", name="twice", k=2, n=3)
    with pytest.raises(UserError, match="stored already"):
        client.put_bytes(b"2", name="twice", k=2, n=3)
    assert client.get_bytes("twice") == b"1"


def test_rm_frees_the_nodes_space_and_forgets_the_object(client, network):
    start = used_bytes(network)
    client.put_bytes(blob(300_000, 13), name="gone", k=4, n=6)
    assert used_bytes(network) > start + 300_000
    r = client.rm("gone")
    assert (r.deleted, r.failed) == (6, 0)
    assert used_bytes(network) == start
    assert "gone" not in [o.name for o in client.ls()]
    assert not list(client.store.keyring.glob("*.key"))


def test_rm_with_a_node_down_keeps_the_object_unless_forced(client, network):
    m = client.put_bytes(b"R" * 5000, name="sticky", k=2, n=3)
    with network.down(holders(network, m)[:1]):
        with pytest.raises(RefusedError, match="could not be deleted"):
            client.rm("sticky")
        assert "sticky" in [o.name for o in client.ls()]
    assert client.rm("sticky").missing == 2  # two were deleted by the first attempt


def test_an_unreachable_node_is_replaced_by_another(client, network):
    node = network.nodes[0]
    gone = Target(node.address, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    exclude: set[str] = set()
    ref = client.store_shard(
        b"payload", index=0, exclude=exclude, lock=threading.Lock(), first=gone
    )
    assert ref.node != node.address and ref.node in exclude
    assert client.nodes.get(ref.endpoint, ref.id) == b"payload"
    client.nodes.delete(ref.endpoint, ref.id)


def test_put_that_cannot_place_every_shard_leaves_nothing_behind(client, network):
    start = used_bytes(network)
    with network.down(network.nodes[:1]):
        with pytest.raises((RefusedError, UserError)):
            client.put_bytes(blob(100_000, 14), name="too-wide", k=8, n=12)
        assert client.ls() == []
        assert not list(client.store.keyring.glob("*.key"))
    assert used_bytes(network) == start


def test_two_renters_do_not_see_each_others_objects(client, network, tmp_path):
    client.put_bytes(b"mine", name="private", k=2, n=3)
    with make_client(tmp_path / "other", network, "other-renter") as other:
        assert other.ls() == []
        m = client.store.find("private")
        shard = m.segments[0].shards[0]
        with pytest.raises(NodeRefused, match="another account"):
            other.nodes.get(shard.endpoint, shard.id)


def _same_file(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def test_client_is_a_context_manager(tmp_path, network):
    acct = network.nodes[0].account
    with (
        StorageClient(home=tmp_path, account=acct, marketplace=None) as c,
        pytest.raises(UserError, match="needs a marketplace"),
    ):
        c.put_bytes(b"x", name="x", k=1, n=2)


def test_repair_moves_a_shard_whose_node_failed_an_audit(client, network):
    m = client.put_bytes(blob(20_000, 15), name="audited", k=2, n=3)
    shard = m.segments[0].shards[1]
    result = repair_object(client, "audited", condemned={shard.id})
    assert result.shards_rebuilt == 1
    moved = client.store.find("audited").segments[0].shards[1]
    assert moved.node not in {s.node for s in m.segments[0].shards}
    assert moved.sha256 == shard.sha256
    assert shard.id not in {p.name for p in network.by_address(shard.node).shard_files()}
    assert client.get_bytes("audited") == blob(20_000, 15)


def test_get_works_peer_to_peer_when_the_marketplace_is_unreachable(client, network):
    client.put_bytes(b"p2p" * 999, name="p2p", k=2, n=3)
    unreachable = f"http://127.0.0.1:{free_port()}"
    with StorageClient(home=client.home, account=client.account, marketplace=unreachable) as c:
        assert c.get_bytes("p2p") == b"p2p" * 999
