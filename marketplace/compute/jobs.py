"""Jobs: creating them from signed specs, looking them up, and what they cost."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.compute import held
from marketplace.compute.images import ImagePull
from marketplace.energy.grid import Grid
from marketplace.errors import InvalidInputError, NotFoundError
from marketplace.matching.records import JobRequest, Resources, unit_budget_wei
from marketplace.store.models import AssignmentRow, ChainEventRow, ChainJobRow, JobRow
from protocol.schemas import JobSpec, spec_hash

PENDING, MATCHED, UNMATCHED, EXPIRED = "pending", "matched", "unmatched", "expired"


def create(session: Session, *, renter: str, spec: JobSpec, grid: Grid) -> JobRow:
    """Record a new job (status pending) from a verified spec."""
    held.check_window(spec, time.time())
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


def request_of(job_id: str, spec: JobSpec, pull: ImagePull | None = None) -> JobRequest:
    """The matching request for a spec: its per-CPU-second budget and demand, and its
    image: required (an offered image) or, with the `pull` of a renter's image,
    preferred (providers without it are charged the pull)."""
    r = spec.resources
    return JobRequest(
        lat=spec.origin.lat,
        lon=spec.origin.lon,
        resources=Resources(cpu=r.cpu, memory_mb=r.memory_mb, gpu=r.gpu, disk_mb=r.disk_mb),
        image=spec.image if pull is None else None,
        max_price_wei=unit_budget_wei(spec.max_price_wei, cpu=r.cpu, duration_s=spec.time_limit_s),
        id=job_id,
        prefer_image=None if pull is None else pull.digest,
        pull_km=0.0 if pull is None else pull.km,
    )


def cost_wei(price_per_cpu_s: int, spec: JobSpec) -> int:
    """What a provider asking `price_per_cpu_s` charges for the whole job (rounded up)."""
    return math.ceil(price_per_cpu_s * spec.resources.cpu * spec.time_limit_s)


def get(session: Session, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None:
        raise NotFoundError(f"no job {job_id}; list jobs at /v1/jobs")
    return row


def by_chain_id(session: Session, chain_job_id: int) -> JobRow | None:
    """The job funded as escrow job `chain_job_id`, if it was funded through us."""
    return session.scalars(select(JobRow).where(JobRow.chain_job_id == chain_job_id)).first()


def list_page(
    session: Session,
    *,
    renter: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[JobRow]]:
    """(how many jobs match, one page of them newest first), by renter (any letter case)
    and status."""
    query = select(JobRow)
    if renter is not None:
        query = query.where(func.lower(JobRow.renter) == renter.lower())
    if status is not None:
        query = query.where(JobRow.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(JobRow.created_at.desc(), JobRow.id).limit(limit).offset(offset)
    ).all()
    return total, rows


def set_verifiers(session: Session, job_id: str, verifiers: Sequence[AssignmentRow]) -> None:
    """Record a dispute's verifiers as the job's assignments in slots 1, 2, ...

    A new draw replaces the previous one (the renter did not use it); slot 0, the
    original provider, stays.
    """
    row = get(session, job_id)
    row.assignments = [a for a in row.assignments if a.slot == 0]
    for slot, a in enumerate(verifiers, 1):
        a.slot = slot
        row.assignments.append(a)


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
