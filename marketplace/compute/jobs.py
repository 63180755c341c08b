"""Jobs: creating them from signed specs, and how they look through the API."""

from __future__ import annotations

import math
import time
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.api.schemas import (
    AssignmentPublic,
    ChainEventPublic,
    ChainJobPublic,
    JobPublic,
)
from marketplace.energy.grid import Grid
from marketplace.errors import InvalidInputError, NotFoundError
from marketplace.matching.records import JobRequest, Resources, unit_budget_wei
from marketplace.store.models import AssignmentRow, ChainEventRow, ChainJobRow, JobRow
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


def assignment_public(a: AssignmentRow, spec: JobSpec) -> AssignmentPublic:
    return AssignmentPublic(
        slot=a.slot,
        provider=a.provider,
        endpoint=a.endpoint,
        distance_km=round(a.distance_km, 3),
        energy_level=a.energy_level,
        score=round(a.score, 3),
        reputation=round(a.reputation, 4),
        price_wei=a.price_wei,
        cost_wei=cost_wei(a.price_wei, spec),
    )


def to_public(session: Session, row: JobRow, *, with_events: bool = False) -> JobPublic:
    spec = JobSpec.model_validate(row.spec)
    assignments = [assignment_public(a, spec) for a in row.assignments]
    chain_row = session.get(ChainJobRow, row.chain_job_id) if row.chain_job_id else None
    chain = None
    if chain_row is not None:
        chain = ChainJobPublic(
            chain_job_id=chain_row.chain_job_id,
            state=chain_row.state,
            deposit_wei=chain_row.deposit_wei,
            deadline=chain_row.deadline,
            replicas=chain_row.replicas,
            accepted=list(chain_row.accepted),
            result_hash=chain_row.result_hash,
        )
    events: list[ChainEventPublic] = []
    if with_events and row.chain_job_id is not None:
        events = [
            ChainEventPublic(
                block_number=e.block_number, tx_hash=e.tx_hash, name=e.name, args=e.args
            )
            for e in session.scalars(
                select(ChainEventRow)
                .where(ChainEventRow.chain_job_id == row.chain_job_id)
                .order_by(ChainEventRow.block_number, ChainEventRow.log_index)
            )
        ]
    return JobPublic(
        id=row.id,
        renter=row.renter,
        status=row.status,
        reason=row.reason,
        spec=spec,
        spec_hash=row.spec_hash,
        created_at=row.created_at,
        matched_at=row.matched_at,
        assignments=assignments,
        price_wei=max((a.cost_wei for a in assignments), default=None),
        chain=chain,
        events=events,
    )
