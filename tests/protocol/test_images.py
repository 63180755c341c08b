"""Pinned image references, read grants and key wrapping (protocol.images, protocol.keywrap)."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from protocol import keywrap
from protocol.images import (
    ImageRefError,
    ReadGrant,
    is_pinned,
    pin,
    sign_grant,
    split_pinned,
    verify_grant,
)
from protocol.schemas import JobSpec, canonical_json, spec_hash
from protocol.signing import SignatureError

DIGEST = "sha256:" + "ab" * 32
RENTER = Account.create()
PROVIDER = Account.create()
OTHER = Account.create()
NODE = Account.create().address


def test_pin_round_trips_and_refuses_what_is_not_pinned() -> None:
    ref = pin("myapp:1", DIGEST)
    assert ref == f"myapp:1@{DIGEST}" and is_pinned(ref)
    assert split_pinned(ref) == ("myapp:1", DIGEST)
    assert split_pinned(f"team/app@{DIGEST}") == ("team/app", DIGEST)
    for bad in ("myapp:1", f"MyApp@{DIGEST}", "myapp@sha256:abc", f"myapp@{DIGEST.upper()}"):
        with pytest.raises(ImageRefError, match="dcloud image push"):
            split_pinned(bad)
    assert not is_pinned("dcloud/busybox:1")


def test_a_wrapped_key_opens_only_for_its_recipient_and_context() -> None:
    key = bytes(range(32))
    public = keywrap.public_key_of(bytes(PROVIDER.key))
    assert keywrap.address_of(public) == PROVIDER.address
    wrapped = keywrap.wrap(key, public, context=b"layer-1")
    assert keywrap.unwrap(wrapped, bytes(PROVIDER.key), context=b"layer-1") == key
    with pytest.raises(keywrap.KeyWrapError, match="does not open"):
        keywrap.unwrap(wrapped, bytes(OTHER.key), context=b"layer-1")
    with pytest.raises(keywrap.KeyWrapError, match="does not open"):
        keywrap.unwrap(wrapped, bytes(PROVIDER.key), context=b"layer-2")
    with pytest.raises(keywrap.KeyWrapError):
        keywrap.wrap(key, "0x04" + "00" * 64, context=b"x")


def _grant(**over: object) -> ReadGrant:
    body: dict[str, object] = {
        "owner": RENTER.address,
        "grantee": PROVIDER.address,
        "node": NODE,
        "shards": ["0" * 32],
        "expires_ms": time.time_ns() // 1_000_000 + 60_000,
    }
    body.update(over)
    return ReadGrant.model_validate(body)


def test_a_grant_holds_for_its_node_grantee_and_time_only() -> None:
    signed = sign_grant(RENTER, _grant())
    assert verify_grant(signed, node=NODE, grantee=PROVIDER.address).shards == ["0" * 32]
    with pytest.raises(SignatureError, match="not .*" + OTHER.address):
        verify_grant(signed, node=NODE, grantee=OTHER.address)
    with pytest.raises(SignatureError, match="for node"):
        verify_grant(signed, node=OTHER.address, grantee=PROVIDER.address)
    with pytest.raises(SignatureError, match="expired"):
        verify_grant(signed, node=NODE, grantee=PROVIDER.address, now_ms=2**62)
    forged = signed.model_copy(update={"payload": _grant(shards=["1" * 32])})
    with pytest.raises(SignatureError, match="does not match"):
        verify_grant(forged, node=NODE, grantee=PROVIDER.address)
    long = sign_grant(RENTER, _grant(expires_ms=time.time_ns() // 1_000_000 + 2 * 86400_000))
    with pytest.raises(SignatureError, match="at most"):
        verify_grant(long, node=NODE, grantee=PROVIDER.address)
    with pytest.raises(ValueError, match="owner"):
        sign_grant(OTHER, _grant())


def test_image_bytes_enters_the_spec_hash_only_when_set() -> None:
    body = {
        "image": "dcloud/busybox:1",
        "resources": {"cpu": 1, "memory_mb": 64},
        "time_limit_s": 10,
        "max_price_wei": 10,
        "origin": {"lat": 0, "lon": 0},
    }
    plain = JobSpec.model_validate(body)
    assert "image_bytes" not in plain.model_dump(exclude_unset=True)
    sized = JobSpec.model_validate({**body, "image": f"a@{DIGEST}", "image_bytes": 10})
    unsized = JobSpec.model_validate({**body, "image": f"a@{DIGEST}"})
    assert spec_hash(sized) != spec_hash(unsized)
    # the hash of an offered image's spec is what it was before image_bytes existed
    legacy = plain.model_dump(mode="json")
    for later in ("image_bytes", "start_by", "max_km"):  # fields that came later, unset
        del legacy[later]
    assert spec_hash(plain) == "0x" + keccak(canonical_json(legacy)).hex()
