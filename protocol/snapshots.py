"""Snapshots of a service's /data in the storage network, for a failover to restore.

A renter who asks for snapshots (``ServiceSpec.snapshot_s``) mints a 32-byte secret per
deployment. It is the private key of the account the snapshots are stored under and the
root of their encryption (the storage client derives its manifest MAC and key wrap from
the account key), so whoever holds it, and only they, can store, find and read them. The
renter wraps it to the provider's public key in its push (:data:`CONTEXT` with the lease
id) and leaves it with the marketplace for a failover, which wraps it to the new provider
in turn. The provider stores a tar of /data every ``snapshot_s`` seconds and tells the
marketplace where the newest is (:class:`SnapshotRef`: the object's manifest and wrapped
key, both useless without the secret); a failover hands that on, and the new provider
restores it into /data before the service starts.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from protocol.schemas import Wire

CONTEXT = b"dcloud/service-snapshot/v1"
K, N = 2, 4  # erasure coding of a snapshot: any 2 of 4 nodes restore it

SecretHex = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]


def context(lease_id: int) -> bytes:
    """What a snapshot secret is wrapped for: this purpose and this lease."""
    return CONTEXT + b":" + str(lease_id).encode()


class SnapshotRef(Wire):
    """Where the newest snapshot of a service's /data is: its object in the storage
    network, as the storage client records it under the snapshot account."""

    name: Annotated[str, StringConstraints(max_length=200)]
    object_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    manifest: Annotated[str, StringConstraints(max_length=2_000_000)] = Field(
        description="the object's manifest (JSON, MAC'd with the snapshot account's key)"
    )
    key: Annotated[str, StringConstraints(max_length=10_000)] = Field(
        description="the object's key file (JSON, wrapped with the snapshot account's key)"
    )
    size: int = Field(ge=0, description="bytes of the tar of /data")
    taken_at: float
