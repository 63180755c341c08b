"""Service rows: statuses, lookups, and the one way capacity held for a service returns.

A deployment's status moves ``placed`` (a provider's capacity reserved) → ``leased``
(the renter opened a lease for it on chain) → ``serving`` (reported serving on chain),
and ends ``ended`` (stopped before a lease, or its lease ended on chain) or ``expired``
(no accepted lease within the reservation's time). ``ending`` is a live service whose
owner asked it to stop; its lease on chain decides when it ends. ``unmatched`` is a
deployment no provider could take (with the reason).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.compute import providers
from marketplace.errors import NotFoundError
from marketplace.store.models import ChainLeaseRow, ServiceRow
from protocol.schemas import Capacity
from protocol.services import ServiceSpec, service_spec_hash

PLACED, LEASED, SERVING, ENDING = "placed", "leased", "serving", "ending"
ENDED, EXPIRED, UNMATCHED = "ended", "expired", "unmatched"
LIVE = (PLACED, LEASED, SERVING, ENDING)
STATUSES = (PLACED, LEASED, SERVING, ENDING, ENDED, EXPIRED, UNMATCHED)


def new_row(*, name: str, renter: str, spec: ServiceSpec, now: float) -> ServiceRow:
    """A deployment of `spec` by `renter`, not placed yet (the caller sets status)."""
    r = spec.resources
    return ServiceRow(
        id=str(uuid.uuid4()),
        name=name,
        renter=renter,
        spec=spec.model_dump(mode="json"),
        spec_hash=service_spec_hash(spec),
        status=UNMATCHED,
        reason="",
        created_at=now,
        updated_at=now,
        endpoint="",
        reserved=False,
        cpu=r.cpu,
        memory_mb=r.memory_mb,
        gpu=r.gpu,
        disk_mb=r.disk_mb,
        restarts=0,
        uptime_s=0.0,
        last_error="",
        probe_detail="",
    )


def live(session: Session, name: str) -> ServiceRow | None:
    """The live deployment of `name`, if any (at most one by the naming rule)."""
    return session.scalars(
        select(ServiceRow)
        .where(ServiceRow.name == name, ServiceRow.status.in_(LIVE))
        .order_by(ServiceRow.created_at.desc())
    ).first()


def current(session: Session, name: str) -> ServiceRow:
    """The live deployment of `name`, else its latest one."""
    row = (
        live(session, name)
        or session.scalars(
            select(ServiceRow).where(ServiceRow.name == name).order_by(ServiceRow.created_at.desc())
        ).first()
    )
    if row is None:
        raise NotFoundError(f"no service named {name}; list services at /v1/services")
    return row


def list_page(
    session: Session, *, renter: str | None, status: str | None, limit: int, offset: int
) -> tuple[int, Sequence[ServiceRow]]:
    """(how many deployments match, one page of them newest first)."""
    query = select(ServiceRow)
    if renter is not None:
        query = query.where(func.lower(ServiceRow.renter) == renter.lower())
    if status is not None:
        query = query.where(ServiceRow.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ServiceRow.created_at.desc(), ServiceRow.id).limit(limit).offset(offset)
    ).all()
    return total, rows


def lease_of(session: Session, row: ServiceRow) -> ChainLeaseRow | None:
    """The lease on chain the deployment runs under, as the indexer last saw it."""
    return session.get(ChainLeaseRow, row.lease_id) if row.lease_id is not None else None


def release(session: Session, row: ServiceRow) -> bool:
    """Give the capacity the deployment holds back to its provider; True if it held any.

    Idempotent: a deployment holds its reservation once, from placement until its
    provider counts it (its first report) or it ends.
    """
    if not row.reserved or row.provider is None:
        row.reserved_until = None
        return False
    providers.give_back(
        session,
        row.provider,
        Capacity(cpu=row.cpu, memory_mb=row.memory_mb, gpu=row.gpu, disk_mb=row.disk_mb),
    )
    row.reserved, row.reserved_until = False, None
    return True


def end(session: Session, row: ServiceRow, *, status: str, reason: str, now: float) -> bool:
    """End the deployment (`ended` or `expired`) and free what it held; True if it held
    capacity."""
    row.status, row.reason = status, reason
    row.ended_at = row.updated_at = now
    return release(session, row)


def touch(row: ServiceRow, now: float | None = None) -> None:
    row.updated_at = time.time() if now is None else now
