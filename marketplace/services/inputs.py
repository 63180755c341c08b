"""The renter's copy of its service's inputs (and snapshot secret), kept for a failover,
and where its provider stored the newest snapshot of its /data.

A failover starts the service on another provider while its renter may be away, and only
the renter ever sent the inputs (to the first provider). A renter who agreed to failover
leaves a copy here (``POST /v1/services/{name}/inputs``, signed): exactly the files its
spec declares, each matching its size and sha256, at most ``DCLOUD_FAILOVER_INPUTS_MB``
in all. The failover worker sends them with the spec to the new provider, which checks
them against the spec's hashes again. Trust: the marketplace sees these files, as it sees
the spec (its command and environment); a renter who would not show them deploys with
``--no-failover`` or without inputs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from sqlalchemy.orm import Session

from marketplace.errors import AuthError, ConflictError, InvalidInputError, NotFoundError
from marketplace.services import catalog
from marketplace.store.models import ServiceRow
from protocol.services import ServiceSpec
from protocol.snapshots import SnapshotRef


def keep(
    session: Session,
    *,
    renter: str,
    name: str,
    lease_id: int,
    inputs: dict[str, str],
    max_bytes: int,
    snapshot_key: str | None = None,
) -> ServiceRow:
    """Keep `inputs` (path -> base64), and the snapshot secret when the spec asks for
    snapshots, with `renter`'s live deployment of `name`.

    Raises:
        NotFoundError: no live deployment of `name`.
        AuthError: `renter` does not own it.
        ConflictError: it runs under another lease.
        InvalidInputError: the files are not the spec's, or more than `max_bytes`.
    """
    row = catalog.live(session, name)
    if row is None:
        raise NotFoundError(f"no live service named {name}; see /v1/services/{name}")
    if row.renter.lower() != renter.lower():
        raise AuthError(f"only the renter who deployed {name} may leave its inputs")
    if row.lease_id != lease_id:
        raise ConflictError(f"{name} runs under lease {row.lease_id}, not {lease_id}")
    declared = {f.path: f for f in ServiceSpec.model_validate(row.spec).inputs}
    if set(inputs) != set(declared):
        raise InvalidInputError(
            f"the inputs sent {sorted(inputs)} are not the spec's {sorted(declared)}"
        )
    total = 0
    for path, b64 in inputs.items():
        try:
            data = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"input {path} is not valid base64") from None
        f = declared[path]
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise InvalidInputError(f"input {path} does not match its size and sha256")
        total += len(data)
    if total > max_bytes:
        raise InvalidInputError(
            f"the inputs are {total / 1e6:.1f} MB; this marketplace keeps at most "
            f"{max_bytes / 1e6:.1f} MB for a failover"
        )
    row.inputs = dict(inputs)
    if snapshot_key is not None:
        row.snapshot_key = snapshot_key
    catalog.touch(row)
    return row


def keep_snapshot(
    session: Session, *, provider: str, name: str, lease_id: int, snapshot: SnapshotRef
) -> ServiceRow:
    """Record where the newest snapshot of `name`'s /data is, as its provider says.

    Raises:
        NotFoundError: no live deployment of `name`.
        AuthError: `provider` is not the one it is placed on.
        ConflictError: it runs under another lease.
    """
    row = catalog.live(session, name)
    if row is None:
        raise NotFoundError(f"no live service named {name}")
    if row.provider is None or row.provider.lower() != provider.lower():
        raise AuthError(f"only the provider {name} is placed on may report its snapshots")
    if row.lease_id != lease_id:
        raise ConflictError(f"{name} runs under lease {row.lease_id}, not {lease_id}")
    row.snapshot = snapshot.model_dump(mode="json")
    catalog.touch(row)
    return row
