"""Rows as the API shows them: the one place database rows become response models.

The domain packages hand out rows and plain values; this module turns them into the
``*Public`` models of :mod:`marketplace.api.schemas`, so no domain module imports the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from marketplace.api.schemas import (
    AssignmentPublic,
    ChainEventPublic,
    ChainJobPublic,
    JobPublic,
    JobStatusName,
    ProviderPublic,
    ReplicaSlotPublic,
)
from marketplace.compute import providers
from marketplace.compute.jobs import cost_wei
from marketplace.settings import Settings
from marketplace.store.models import (
    AssignmentRow,
    ChainEventRow,
    ChainJobRow,
    JobRow,
    ProviderRow,
)
from protocol.schemas import Capacity, JobSpec, Location


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


def job_public(
    row: JobRow,
    *,
    chain_job: ChainJobRow | None,
    events: Sequence[ChainEventRow] = (),
) -> JobPublic:
    """The job with its assignments, its escrow state (if funded) and the given events."""
    spec = JobSpec.model_validate(row.spec)
    assignments = [assignment_public(a, spec) for a in row.assignments]
    chain = None
    if chain_job is not None:
        chain = ChainJobPublic(
            chain_job_id=chain_job.chain_job_id,
            state=chain_job.state,
            deposit_wei=chain_job.deposit_wei,
            deadline=chain_job.deadline,
            replicas=chain_job.replicas,
            accepted=list(chain_job.accepted),
            result_hash=chain_job.result_hash,
            slots=[
                ReplicaSlotPublic.model_validate(r, from_attributes=True) for r in chain_job.slots
            ],
        )
    return JobPublic(
        id=row.id,
        renter=row.renter,
        status=cast(JobStatusName, row.status),
        reason=row.reason,
        spec=spec,
        spec_hash=row.spec_hash,
        created_at=row.created_at,
        matched_at=row.matched_at,
        assignments=assignments,
        price_wei=max((a.cost_wei for a in assignments), default=None),
        chain=chain,
        events=[
            ChainEventPublic(
                block_number=e.block_number, tx_hash=e.tx_hash, name=e.name, args=e.args
            )
            for e in events
        ],
    )


def provider_public(
    row: ProviderRow,
    *,
    now: float,
    settings: Settings,
    levels: dict[str, int],
    stake_verified: bool,
) -> ProviderPublic:
    up, rep = providers.reputation_of(row, now=now, settings=settings)
    return ProviderPublic(
        address=row.address,
        endpoint=row.endpoint,
        location=Location(lat=row.lat, lon=row.lon),
        region=row.region,
        energy_level=levels.get(row.region, 0),
        total=Capacity(
            cpu=row.total_cpu,
            memory_mb=row.total_memory_mb,
            gpu=row.total_gpu,
            disk_mb=row.total_disk_mb,
        ),
        free=providers.free_of(row),
        price_wei=row.price_wei,
        images=list(row.images),
        online=providers.is_online(row, now=now, settings=settings),
        last_heartbeat_at=row.last_heartbeat_at,
        staked_wei=row.staked_wei,
        stake_active=row.stake_active,
        stake_verified=stake_verified,
        jobs_completed=row.jobs_completed,
        jobs_failed=row.jobs_failed,
        jobs_slashed=row.jobs_slashed,
        uptime=round(up, 4),
        reputation=round(rep, 4),
    )
