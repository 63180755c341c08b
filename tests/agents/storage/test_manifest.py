"""Manifests (MAC-checked, atomic) and the keyring (keys wrapped under the account)."""

from __future__ import annotations

import json

import pytest

from agents.errors import UserError, VerificationError
from agents.storage.files.manifest import Manifest, RenterStore
from protocol.storage import SegmentRef, ShardRef
from tests.agents.storage.network import account


def manifest(name: str = "report.pdf", object_id: str = "ab" * 16) -> Manifest:
    shard = ShardRef(
        index=0,
        id="cd" * 16,
        node=account("n").address,
        endpoint="http://x:1",
        size=9,
        sha256="0" * 64,
    )
    segment = SegmentRef(index=0, plain_size=1, cipher_size=17, sha256="1" * 64, shards=[shard])
    return Manifest(
        object_id=object_id,
        name=name,
        size=1,
        sha256="2" * 64,
        created_at=1.0,
        owner=account("r").address,
        k=1,
        n=2,
        segment_bytes=4096,
        backend="isa_l_rs_vand",
        cipher="AES-256-GCM",
        segments=[segment],
    )


@pytest.fixture
def store(tmp_path) -> RenterStore:
    return RenterStore(tmp_path, account("renter"))


def test_saved_manifest_is_found_by_name(store):
    store.save(manifest())
    found = store.find("report.pdf")
    assert found.segments[0].shards[0].id == "cd" * 16
    assert found.mac == store.mac(found)


def test_edited_manifest_is_refused(store, tmp_path):
    store.save(manifest())
    path = tmp_path / "objects" / f"{'ab' * 16}.json"
    body = json.loads(path.read_text())
    body["segments"][0]["shards"][0]["sha256"] = "f" * 64
    path.write_text(json.dumps(body))
    with pytest.raises(VerificationError, match="changed outside dcloud"):
        store.find("report.pdf")
    (entry,) = store.entries()
    assert isinstance(entry[1], VerificationError)


def test_manifest_of_another_account_is_refused(store, tmp_path):
    RenterStore(tmp_path, account("someone else")).save(manifest())
    with pytest.raises(VerificationError, match="MAC does not match"):
        store.find("report.pdf")


def test_unparsable_manifest_is_refused_clearly(store, tmp_path):
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / f"{'ab' * 16}.json").write_text('{"name": "report.pdf", "size": ')
    with pytest.raises(VerificationError, match="unreadable or malformed"):
        store.find("report.pdf")


def test_unknown_name_says_how_to_list(store):
    with pytest.raises(UserError, match="dcloud file ls"):
        store.find("nope")


def test_key_round_trips_and_is_not_stored_in_clear(store, tmp_path):
    key = bytes(range(32))
    store.store_key("ab" * 16, key)
    assert store.load_key("ab" * 16) == key
    assert key.hex() not in (tmp_path / "keyring" / f"{'ab' * 16}.key").read_text()
    assert key.hex() not in json.dumps(manifest().model_dump())


def test_key_file_of_another_object_is_a_wrong_key(store, tmp_path):
    store.store_key("ab" * 16, bytes(32))
    (tmp_path / "keyring" / f"{'ab' * 16}.key").rename(tmp_path / "keyring" / f"{'ef' * 16}.key")
    with pytest.raises(VerificationError, match="wrong key"):
        store.load_key("ef" * 16)


def test_key_file_of_another_account_is_a_wrong_key(store, tmp_path):
    RenterStore(tmp_path, account("other")).store_key("ab" * 16, bytes(32))
    with pytest.raises(VerificationError, match="wrong key"):
        store.load_key("ab" * 16)


def test_missing_key_says_to_restore_the_keyring(store):
    with pytest.raises(UserError, match="restore the keyring"):
        store.load_key("ab" * 16)


def test_save_replaces_atomically_without_leftovers(store, tmp_path):
    m = manifest()
    store.save(m)
    m.size = 1
    store.save(m)
    assert [p.name for p in (tmp_path / "objects").iterdir()] == [f"{'ab' * 16}.json"]


def test_a_damaged_manifest_does_not_block_other_names(store, tmp_path):
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / f"{'ab' * 16}.json").write_text("{")
    assert store.exists("new name") is False
    store.save(manifest(name="new name", object_id="cd" * 16))
    assert store.find("new name").name == "new name"
