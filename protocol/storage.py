"""Storage wire models: storage nodes, the marketplace's node registry, and the shard API.

Three parties speak these:

- **Storage nodes** register and heartbeat to the marketplace with signed envelopes
  (purposes :data:`REGISTER` and :data:`HEARTBEAT`), announcing their endpoint, location
  and free bytes.
- **Renters** ask the marketplace where to put shards (``POST /v1/storage/placement``,
  unsigned: it only reads), and report what they saw of each node (``POST
  /v1/storage/reports``, purpose :data:`REPORT`), which feeds the nodes' reputation.
- **Renters talk to nodes directly** (peer to peer) over the shard API:
  ``PUT/GET/DELETE /v1/shards/{id}``, ``GET /v1/shards/{id}/meta`` and
  ``GET /v1/shards/{id}/proof?chunk=i``. Every request carries the renter's signature in
  the headers of :mod:`protocol.provider_api` (``x-dcloud-signer``,
  ``x-dcloud-timestamp-ms``, ``x-dcloud-signature``) over the payload
  :func:`shard_request_payload` with purpose :data:`SHARD`. A PUT also signs the body's
  sha256 and size, so a signature cannot carry other bytes. The signer that stored a
  shard owns it: only it may read, inspect or delete it. ``GET /v1/health`` is public.

Node errors are JSON ``{"detail": "...", "error": "<kind>"}``: 401 bad signature or
replay, 403 not the owner, 404 no such shard, 409 the id holds other content, 413 shard
too large, 422 bad body or headers, 507 the node's quota is full.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from protocol import purposes, signing
from protocol.schemas import Address, Location, RegionId, Url, Wire

REGISTER = purposes.STORAGE_REGISTER
HEARTBEAT = purposes.STORAGE_HEARTBEAT
REPORT = purposes.STORAGE_REPORT
SHARD = purposes.STORAGE_SHARD

__all__ = [
    "CONTENT_SHA256_HEADER",
    "HEARTBEAT",
    "MAX_SHARD_BYTES",
    "REGISTER",
    "REPORT",
    "SHARD",
    "SIGNATURE_HEADER",
    "SIGNER_HEADER",
    "TIMESTAMP_HEADER",
    "NodeHealth",
    "NodeReport",
    "Placement",
    "PlacementRequest",
    "ReportResult",
    "SegmentRef",
    "ShardInfo",
    "ShardProof",
    "ShardRef",
    "StorageHeartbeat",
    "StorageNodeList",
    "StorageNodePublic",
    "StorageNodeRegistration",
    "StorageReport",
    "shard_request_payload",
]

CONTENT_SHA256_HEADER = "x-dcloud-content-sha256"
SIGNER_HEADER = signing.SIGNER_HEADER
TIMESTAMP_HEADER = signing.TIMESTAMP_HEADER
SIGNATURE_HEADER = signing.SIGNATURE_HEADER

MAX_SHARD_BYTES = 64 * 2**20
"""The largest shard a node accepts (a segment of 64 MiB with k = 1)."""
MAX_CAPACITY_BYTES = 2**53 - 1
"""8 PiB: the largest integer every JSON reader holds exactly, so schema and check agree."""
MAX_PLACEMENT_SEGMENTS = 4096
MAX_SHARDS_PER_SEGMENT = 32  # ISA-L's Reed-Solomon backends stop at 32 fragments

ShardId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32,64}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Bytes = Annotated[int, Field(ge=0, le=MAX_CAPACITY_BYTES)]


def shard_request_payload(
    method: str, path: str, *, sha256: str | None = None, size: int | None = None
) -> dict[str, Any]:
    """What a shard request signs: method, path (with its query) and, for a PUT, the body."""
    payload: dict[str, Any] = {"method": method.upper(), "path": path}
    if sha256 is not None:
        payload["sha256"] = sha256
        payload["size"] = size
    return payload


class _Answer(BaseModel):
    """Base of response models: unknown fields are ignored, so servers can add some."""

    model_config = ConfigDict(extra="ignore")


# ------------------------------------------------------------------ marketplace registry


class StorageNodeRegistration(Wire):
    endpoint: Url = Field(description="where renters reach the node directly")
    location: Location
    region: RegionId | None = Field(default=None, description="nearest bundled region if omitted")
    capacity_bytes: int = Field(ge=1, le=MAX_CAPACITY_BYTES, description="the owner's quota")
    free_bytes: Bytes
    shards: int = Field(default=0, ge=0, le=2**40)

    @model_validator(mode="after")
    def _free_within_capacity(self) -> StorageNodeRegistration:
        if self.free_bytes > self.capacity_bytes:
            raise ValueError("free_bytes exceeds capacity_bytes")
        return self


class StorageHeartbeat(Wire):
    free_bytes: Bytes
    shards: int = Field(default=0, ge=0, le=2**40)


class StorageNodePublic(_Answer):
    address: str
    endpoint: str
    location: Location
    region: str
    capacity_bytes: int
    free_bytes: int
    used_bytes: int
    shards: int
    online: bool
    registered_at: float
    last_heartbeat_at: float
    uptime: float
    reputation: float = Field(description="in [0, 1]; higher is more reliable")
    fetch_ok: int
    fetch_failed: int
    fetch_corrupt: int
    latency_ms: float | None
    audits_passed: int
    audits_failed: int


class StorageNodeList(_Answer):
    total: int
    limit: int
    offset: int
    items: list[StorageNodePublic]


class PlacementRequest(Wire):
    n: int = Field(ge=1, le=MAX_SHARDS_PER_SEGMENT, description="distinct nodes per segment")
    segments: int = Field(default=1, ge=1, le=MAX_PLACEMENT_SEGMENTS)
    shard_bytes: int = Field(ge=0, le=MAX_SHARD_BYTES, description="bytes of each shard")
    exclude: list[Address] = Field(default_factory=list, max_length=1024)
    cold: bool = Field(
        default=False,
        description="cold data: every node weighs the same, so less reliable nodes take a "
        "fair share (hot data favours reliable nodes)",
    )


class Placement(_Answer):
    """``segments[s]`` lists indexes into ``nodes``: the n distinct nodes of segment s."""

    nodes: list[StorageNodePublic]
    segments: list[list[int]]


class NodeReport(Wire):
    node: Address
    ok: int = Field(default=0, ge=0, le=10**6, description="shards served intact")
    failed: int = Field(default=0, ge=0, le=10**6, description="unreachable, refused, missing")
    corrupt: int = Field(default=0, ge=0, le=10**6, description="served bytes of a wrong hash")
    latency_ms: float | None = Field(default=None, ge=0, le=3.6e6, description="mean per shard")


class StorageReport(Wire):
    reports: list[NodeReport] = Field(min_length=1, max_length=256)


class ReportResult(_Answer):
    applied: int
    unknown: list[str]


# ------------------------------------------------------------------ node API answers


class NodeHealth(_Answer):
    address: str
    endpoint: str
    quota_bytes: int
    used_bytes: int
    free_bytes: int
    shards: int


class ShardInfo(_Answer):
    id: str
    size: int
    sha256: str = Field(description="as stored; re-read from disk when verify=true was asked")
    stored_at: float
    verified: bool = Field(description="the sha256 was recomputed from the bytes on disk")


class ShardProof(_Answer):
    """One chunk of a shard and its Merkle proof (``protocol.merkle.chunk_leaves``)."""

    id: str
    chunk_index: int
    chunks: int
    chunk: str = Field(description="base64 of the chunk's bytes")
    proof: list[str] = Field(description="0x-hex siblings from leaf to root")
    root: str = Field(description="0x-hex Merkle root of the shard's chunks")


# ------------------------------------------------------------------ where an object's shards are


class ShardRef(Wire):
    index: int = Field(ge=0, lt=32)
    id: ShardId
    node: Address
    endpoint: str
    size: int = Field(ge=0)
    sha256: Sha256Hex


class SegmentRef(Wire):
    index: int = Field(ge=0)
    plain_size: int = Field(ge=0)
    cipher_size: int = Field(ge=16)
    sha256: Sha256Hex = Field(description="of the ciphertext (what decoding must give)")
    shards: list[ShardRef]
