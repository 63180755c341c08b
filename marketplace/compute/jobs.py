"""Jobs: creating them from signed specs, looking them up, and what they cost."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.energy.grid import Grid
from marketplace.errors import InvalidInputError, NotFoundError
from marketplace.matching.records import JobRequest, Resources, unit_budget_wei
from marketplace.store.models import ChainEventRow, ChainJobRow, JobRow
from protocol.schemas import JobSpec, spec_hash

PENDING, MATCHED, UNMATCHED = "pending", "matched", "unmatched"


def create(session: Session, *, renter: str, spec: JobSpec, grid: Grid) -> JobRow:
    """Record a new job (status pending) from a verified spec."""
    if spec.regions:
        unknown = sorted(set(spec.regions) - grid.region_ids())
        if unknown:
            known = ", ".join(sorted(grid.region_ids()))
            raise InvalidInputError(f"unknown regions {unknown}; use some of: {known}")
    row = JobRow(
        id=str(uuid.uuid4()),
        renter=renter,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec_hash(spec),
        status=PENDING,
        reason="",
        created_at=time.time(),
    )
    session.add(row)
    return row


def request_of(job_id: str, spec: JobSpec) -> JobRequest:
    """The matching request for a spec: its per-CPU-second budget and demand."""
    r = spec.resources
    return JobRequest(
        lat=spec.origin.lat,
        lon=spec.origin.lon,
        resources=Resources(cpu=r.cpu, memory_mb=r.memory_mb, gpu=r.gpu, disk_mb=r.disk_mb),
        image=spec.image,
        max_price_wei=unit_budget_wei(spec.max_price_wei, cpu=r.cpu, duration_s=spec.time_limit_s),
        id=job_id,
    )


def cost_wei(price_per_cpu_s: int, spec: JobSpec) -> int:
    """What a provider asking `price_per_cpu_s` charges for the whole job (rounded up)."""
    return math.ceil(price_per_cpu_s * spec.resources.cpu * spec.time_limit_s)


def get(session: Session, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None:
        raise NotFoundError(f"no job {job_id}; list jobs at /v1/jobs")
    return row


def chain_job(session: Session, row: JobRow) -> ChainJobRow | None:
    """The escrow state of a funded job, as the indexer last saw it (None: not funded)."""
    return session.get(ChainJobRow, row.chain_job_id) if row.chain_job_id is not None else None


def chain_events(session: Session, row: JobRow) -> Sequence[ChainEventRow]:
    """The chain events of a funded job, in chain order (none before it is funded)."""
    if row.chain_job_id is None:
        return []
    return session.scalars(
        select(ChainEventRow)
        .where(ChainEventRow.chain_job_id == row.chain_job_id)
        .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
    ).all()
