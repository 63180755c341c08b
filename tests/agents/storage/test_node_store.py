"""A node's shard store on disk: quota, owners, never overwriting, surviving restarts."""

from __future__ import annotations

import hashlib

import pytest

from agents.storage.node.store import (
    NotOwnerError,
    QuotaExceededError,
    ShardConflictError,
    ShardMismatchError,
    ShardNotFoundError,
    ShardStore,
)

ALICE, BOB = "0x" + "a1" * 20, "0x" + "b0" * 20
SID, SID2 = "5a" * 16, "6b" * 16


def put(store: ShardStore, sid: str, data: bytes, owner: str = ALICE) -> bool:
    store.reserve(sid, len(data))
    try:
        return store.put(sid, owner=owner, data=data, sha256=hashlib.sha256(data).hexdigest())
    finally:
        store.release(sid, len(data))


def test_put_get_delete_frees_the_space(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=1000, fsync=False)
    assert put(store, SID, b"abc") is True
    assert (store.used_bytes, store.free_bytes, store.shard_count) == (3, 997, 1)
    record, data = store.get(SID, owner=ALICE)
    assert data == b"abc" and record.sha256 == hashlib.sha256(b"abc").hexdigest()
    store.delete(SID, owner=ALICE)
    assert (store.used_bytes, store.shard_count) == (0, 0)
    with pytest.raises(ShardNotFoundError):
        store.get(SID, owner=ALICE)


def test_writes_past_the_quota_are_refused_and_say_how_much_is_free(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=False)
    put(store, SID, b"x" * 60)
    with pytest.raises(QuotaExceededError, match="40 of 100 are free"):
        store.reserve(SID2, 41)
    assert store.used_bytes == 60


def test_reservations_count_against_the_quota(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=False)
    store.reserve(SID, 70)
    with pytest.raises(QuotaExceededError):
        store.reserve(SID2, 31)
    store.release(SID, 70)
    store.reserve(SID2, 31)


def test_only_the_owner_reads_or_deletes(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=False)
    put(store, SID, b"abc")
    with pytest.raises(NotOwnerError):
        store.get(SID, owner=BOB)
    with pytest.raises(NotOwnerError):
        store.delete(SID, owner=BOB)
    assert store.get(SID, owner=ALICE)[1] == b"abc"


def test_same_bytes_again_is_a_no_op_and_other_bytes_are_refused(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=False)
    put(store, SID, b"abc")
    assert put(store, SID, b"abc") is False
    with pytest.raises(ShardConflictError, match="never overwritten"):
        put(store, SID, b"xyz")
    with pytest.raises(ShardConflictError):
        put(store, SID, b"abc", owner=BOB)
    assert store.get(SID, owner=ALICE)[1] == b"abc"
    assert store.used_bytes == 3


def test_body_that_does_not_match_its_hash_is_refused(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=False)
    store.reserve(SID, 3)
    with pytest.raises(ShardMismatchError):
        store.put(SID, owner=ALICE, data=b"abc", sha256="0" * 64)
    assert store.shard_count == 0


def test_restart_counts_what_is_on_disk_and_drops_unrecorded_bytes(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=True)
    put(store, SID, b"abcd")
    (tmp_path / SID2[:2]).mkdir()
    (tmp_path / SID2[:2] / SID2).write_bytes(b"half-written")  # data without a record
    (tmp_path / SID[:2] / f".{SID}.99.tmp").write_bytes(b"tmp")
    again = ShardStore(tmp_path, quota_bytes=100)
    assert (again.used_bytes, again.shard_count) == (4, 1)
    assert not (tmp_path / SID2[:2] / SID2).exists()
    assert not (tmp_path / SID[:2] / f".{SID}.99.tmp").exists()


def test_verify_rehashes_the_bytes_on_disk(tmp_path):
    store = ShardStore(tmp_path, quota_bytes=100, fsync=False)
    put(store, SID, b"abc")
    (tmp_path / SID[:2] / SID).write_bytes(b"abd")
    record, now = store.verify(SID, owner=ALICE)
    assert now != record.sha256
