"""Renters' own images on the wire: pinned references, read grants and image sources.

A renter pushes an image it built (``dcloud image push myapp:1``): the image's config and
each layer (the uncompressed layer tarballs ``docker save`` writes) are stored as
encrypted, erasure-coded objects on the storage network, deduplicated by digest. A job
or service then names the image **pinned** to its content digest,
``myapp:1@sha256:<config digest>`` (:func:`pin`); the funded spec hash covers that string,
so the provider cannot run anything else and the renter cannot swap it afterwards.

With the signed push of a job or service the renter sends an :class:`ImageSource`: the
image's config, and for every layer where its shards are, the layer's object key
wrapped to that provider's public key (``protocol.keywrap``), and one
:class:`ReadGrant` per storage node, signed by the renter (purpose :data:`GRANT`), which
lets that provider (and nobody else) read exactly the listed shards until it expires.
The provider posts each grant to its node (``POST /v1/grants``, signed by the provider
with the usual shard-request headers), then reads the shards with its own signature.

The provider checks everything against the pinned digest before Docker sees a byte: the
config's sha256 is the image digest, the config's ``rootfs.diff_ids`` are the sha256 of
the layers in order, and every layer tarball is inspected for paths or links outside its
root (:data:`MAX_IMAGE_BYTES` and the provider's own limit cap the size).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from protocol import purposes
from protocol.errors import ProtocolError
from protocol.keywrap import WrappedKey
from protocol.schemas import PINNED_IMAGE, Address, Wire
from protocol.signing import SignatureError, sign_request, verify_request
from protocol.storage import SegmentRef, ShardId

GRANT = purposes.STORAGE_GRANT

MAX_IMAGE_BYTES = 8 * 2**30
"""The largest image the protocol carries (a provider sets its own, lower, limit)."""
MAX_LAYERS = 127
"""Docker's own limit on layers in an image."""
MAX_CONFIG_BYTES = 1 * 2**20
MAX_GRANT_SHARDS = 65536
MAX_GRANT_S = 24 * 3600
"""A grant lives at most a day: long enough to pull, short enough to expire unused."""

Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]

_REF = PINNED_IMAGE


class ImageRefError(ProtocolError, ValueError):
    """A string that is not ``name[:tag]@sha256:<64 hex>``."""


def pin(name: str, digest: str) -> str:
    """``name@digest``: how a spec names a renter's image."""
    ref = f"{name}@{digest}"
    split_pinned(ref)
    return ref


def split_pinned(ref: str) -> tuple[str, str]:
    """``(name, digest)`` of a pinned reference.

    Raises:
        ImageRefError: not ``name[:tag]@sha256:<64 lower-case hex>``.
    """
    m = _REF.match(ref)
    if m is None:
        raise ImageRefError(
            f"{ref!r} is not a pinned image (name[:tag]@sha256:<64 hex>); push the image with "
            "`dcloud image push NAME:TAG` and name it by NAME:TAG"
        )
    return m.group("name"), m.group("digest")


def is_pinned(ref: str) -> bool:
    """Whether `ref` names a renter's image by digest (else it is one providers offer)."""
    return "@" in ref


# ------------------------------------------------------------------ read grants


class ReadGrant(Wire):
    """The renter (`owner`) lets `grantee` read `shards` it stored on `node`."""

    owner: Address
    grantee: Address
    node: Address
    shards: list[ShardId] = Field(min_length=1, max_length=MAX_GRANT_SHARDS)
    expires_ms: int = Field(ge=0)


class SignedGrant(Wire):
    """A :class:`ReadGrant` signed by its owner (purpose :data:`GRANT`)."""

    payload: ReadGrant
    signer: Address
    timestamp_ms: int = Field(ge=0)
    signature: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


def sign_grant(account: Any, grant: ReadGrant) -> SignedGrant:
    """`grant` signed by its owner's `account` (a LocalAccount)."""
    if grant.owner.lower() != account.address.lower():
        raise ValueError("a grant is signed by its owner")
    return SignedGrant.model_validate(
        sign_request(account, purpose=GRANT, payload=grant.model_dump(mode="json"))
    )


def verify_grant(
    signed: SignedGrant, *, node: str, grantee: str, now_ms: int | None = None
) -> ReadGrant:
    """The grant, if its owner signed it for this node and grantee and it is still valid.

    Raises:
        SignatureError: not signed by its owner, for another node or grantee, expired, or
            valid for longer than :data:`MAX_GRANT_S`.
    """
    grant = signed.payload
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    if signed.signer.lower() != grant.owner.lower():
        raise SignatureError("a read grant must be signed by the shards' owner")
    verify_request(
        purpose=GRANT,
        payload=grant.model_dump(mode="json"),
        signer=signed.signer,
        timestamp_ms=signed.timestamp_ms,
        signature=signed.signature,
        now_ms=signed.timestamp_ms,  # a grant is judged by its expiry, not its age
    )
    if grant.node.lower() != node.lower():
        raise SignatureError(f"this grant is for node {grant.node}, not {node}")
    if grant.grantee.lower() != grantee.lower():
        raise SignatureError(f"this grant lets {grant.grantee} read, not {grantee}")
    if grant.expires_ms <= now:
        raise SignatureError("this grant has expired; ask the renter to push again")
    if grant.expires_ms - signed.timestamp_ms > MAX_GRANT_S * 1000:
        raise SignatureError(f"a grant may last at most {MAX_GRANT_S} s")
    return grant


# ------------------------------------------------------------------ image sources


class LayerSource(Wire):
    """One layer of a pushed image: its digest and size, where its encrypted shards are
    (the storage object's layout, as in the renter's manifest) and its key, wrapped to the
    provider this source is for."""

    diff_id: Digest = Field(description="sha256 of the uncompressed layer tarball")
    size: int = Field(ge=0, le=MAX_IMAGE_BYTES)
    object_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    k: int = Field(ge=1, le=32)
    n: int = Field(ge=1, le=32)
    segment_bytes: int = Field(ge=1, le=64 * 2**20)
    backend: str = Field(max_length=64)
    cipher: str = Field(max_length=64)
    segments: list[SegmentRef] = Field(max_length=4096)
    key: WrappedKey


class ImageSource(Wire):
    """Everything a provider needs to fetch, check and load one pushed image."""

    ref: str = Field(max_length=256, description="the pinned reference the spec names")
    config: str = Field(max_length=2 * MAX_CONFIG_BYTES, description="the config JSON, base64")
    layers: list[LayerSource] = Field(max_length=MAX_LAYERS)
    grants: list[SignedGrant] = Field(default_factory=list, max_length=1024)

    @model_validator(mode="after")
    def _sane(self) -> ImageSource:
        split_pinned(self.ref)
        if self.size > MAX_IMAGE_BYTES:
            raise ValueError(f"the image has {self.size} bytes; at most {MAX_IMAGE_BYTES}")
        return self

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)


def grant_context(object_id: str, grantee: str) -> bytes:
    """The associated data a layer key is wrapped under: that object, that provider."""
    return f"dcloud/image-layer/{object_id}/{grantee.lower()}".encode()
