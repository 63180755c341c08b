"""Service names: one network-wide namespace, each name owned by its first renter.

A name (a DNS label of 3 to 40 characters, ``protocol.services.ServiceName``) belongs to
the renter who first deployed under it, for good: nobody else may deploy under it. Its
owner may deploy under it again once the previous deployment is over (its lease ended,
its reservation expired, or it was stopped before a lease); a deployment that is only
placed (no lease opened yet) is replaced by the new one.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from marketplace.errors import ConflictError
from marketplace.services import catalog
from marketplace.store.models import ServiceNameRow, ServiceRow

# Paths under /v1/services/ that are not service names.
RESERVED = frozenset({"routes", "quote"})
RULE = (
    "a service name is 3 to 40 characters: lower-case letters, digits and hyphens, "
    "starting and ending with a letter or digit (a DNS label)"
)


def owner_of(session: Session, name: str) -> str | None:
    row = session.get(ServiceNameRow, name)
    return row.owner if row is not None else None


def claim(session: Session, *, name: str, renter: str, now: float) -> ServiceRow | None:
    """Check that `renter` may deploy under `name` now, registering the name on first
    use; returns the live deployment the new one replaces (placed, no lease), if any.

    Raises:
        ConflictError: the name belongs to another renter, or its live deployment has a
            lease on chain.
    """
    if name in RESERVED:
        raise ConflictError(f"the name {name} is reserved; choose another name")
    owner = session.get(ServiceNameRow, name)
    if owner is None:
        session.add(ServiceNameRow(name=name, owner=renter, registered_at=now))
        return None
    if owner.owner.lower() != renter.lower():
        raise ConflictError(f"the name {name} belongs to another renter")
    live = catalog.live(session, name)
    if live is None:
        return None
    if live.lease_id is None and live.status == catalog.PLACED:
        return live
    if live.status == catalog.ENDING:
        raise ConflictError(
            f"{name} is stopping under lease {live.lease_id}; close the lease on chain (or "
            "wait for it to end) before deploying again, or choose another name"
        )
    raise ConflictError(
        f"{name} already runs under lease {live.lease_id}; stop it or choose another name"
    )
