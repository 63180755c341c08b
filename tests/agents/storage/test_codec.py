"""Encryption and erasure coding of segments (pure)."""

from __future__ import annotations

import itertools
import random

import pytest

from agents.errors import UserError, VerificationError
from agents.storage.files import codec


@pytest.mark.parametrize(("k", "n"), [(1, 2), (4, 6), (8, 12), (10, 30)])
@pytest.mark.parametrize("size", [0, 1, 1000, 65_537])
def test_any_k_shards_rebuild_the_segment(k, n, size):
    rng = random.Random(size * 31 + k)
    data = rng.randbytes(size)
    shards = codec.Coder(k, n).encode(data)
    assert len(shards) == n
    for _ in range(5):
        chosen = rng.sample(range(n), k)
        assert codec.Coder(k, n).decode({i: shards[i] for i in chosen}) == data


def test_every_subset_of_k_decodes_for_a_small_code():
    data = random.Random(1).randbytes(10_001)
    shards = codec.Coder(3, 6).encode(data)
    for subset in itertools.combinations(range(6), 3):
        assert codec.Coder(3, 6).decode({i: shards[i] for i in subset}) == data


def test_data_shards_hold_the_data_itself():
    data = bytes(range(256)) * 64
    shards = codec.Coder(4, 6).encode(data)
    payload = b"".join(s[codec.FRAGMENT_HEADER_BYTES :] for s in shards[:4])
    assert payload[: len(data)] == data


def test_rebuild_gives_back_the_exact_lost_shards():
    data = random.Random(2).randbytes(100_000)
    coder = codec.Coder(8, 12)
    shards = coder.encode(data)
    have = {i: shards[i] for i in (0, 2, 3, 5, 8, 9, 10, 11)}
    rebuilt = coder.rebuild(have, [1, 4, 6, 7])
    assert rebuilt == {i: shards[i] for i in (1, 4, 6, 7)}


def test_fewer_than_k_shards_cannot_decode():
    shards = codec.Coder(4, 6).encode(b"x" * 100)
    with pytest.raises(VerificationError, match="4 can"):
        codec.Coder(4, 6).decode({i: shards[i] for i in range(3)})


def test_shard_size_bound_holds():
    for k in (1, 4, 8, 10):
        for size in (0, 1, 4095, codec.SEGMENT_BYTES):
            shard = codec.Coder(k, k + 2).encode(b"\x01" * (size + codec.TAG_BYTES))[0]
            assert len(shard) <= codec.shard_bytes_bound(size, k)


@pytest.mark.parametrize(("k", "n"), [(0, 2), (4, 4), (5, 3), (8, 33)])
def test_unusable_k_n_is_a_user_error(k, n):
    with pytest.raises(UserError, match="1 <= k < n"):
        codec.Coder(k, n)


def test_segment_round_trip_and_the_tag_binds_key_object_and_place():
    key = codec.new_key()
    cipher = codec.encrypt_segment(key, object_id="a" * 32, index=3, plain=b"hello")
    assert len(cipher) == 5 + codec.TAG_BYTES
    assert codec.decrypt_segment(key, object_id="a" * 32, index=3, cipher=cipher) == b"hello"
    for kw in (
        {"key": codec.new_key(), "object_id": "a" * 32, "index": 3},
        {"key": key, "object_id": "b" * 32, "index": 3},
        {"key": key, "object_id": "a" * 32, "index": 4},
    ):
        with pytest.raises(VerificationError, match="does not decrypt"):
            codec.decrypt_segment(kw.pop("key"), cipher=cipher, **kw)


def test_an_empty_segment_still_carries_a_tag():
    key = codec.new_key()
    cipher = codec.encrypt_segment(key, object_id="c" * 32, index=0, plain=b"")
    assert len(cipher) == codec.TAG_BYTES
    with pytest.raises(VerificationError):
        codec.decrypt_segment(codec.new_key(), object_id="c" * 32, index=0, cipher=cipher)


@pytest.mark.parametrize(
    ("size", "segments"), [(0, 1), (1, 1), (4096, 1), (4097, 2), (3 * 4096, 3)]
)
def test_segment_count(size, segments):
    assert codec.segment_count(size, 4096) == segments
