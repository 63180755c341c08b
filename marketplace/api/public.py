"""Rows as the API shows them: the one place database rows become response models.

The domain packages hand out rows and plain values; this module turns them into the
``*Public`` models of :mod:`marketplace.api.schemas`, so no domain module imports the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast
from urllib.parse import urlsplit

from marketplace.api.schemas import (
    AssignmentPublic,
    ChainEventPublic,
    ChainJobPublic,
    ImagePullPublic,
    JobPublic,
    JobStatusName,
    LeasePublic,
    PlanPublic,
    ProviderPublic,
    ReplicaSlotPublic,
    ServiceHealthPublic,
    ServicePlacementPublic,
    ServicePublic,
    ServiceStatusName,
)
from marketplace.compute import providers
from marketplace.compute.images import ImagePull
from marketplace.compute.jobs import cost_wei
from marketplace.services.catalog import LIVE as LIVE_SERVICE
from marketplace.settings import Settings
from marketplace.store.models import (
    AssignmentRow,
    ChainEventRow,
    ChainJobRow,
    ChainLeaseRow,
    JobRow,
    ProviderRow,
    ServiceRow,
)
from protocol.schemas import Capacity, JobSpec, Location
from protocol.services import ServiceSpec


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
        start_at=row.start_at,
        plan=PlanPublic.model_validate(row.plan) if row.plan else None,
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


# ------------------------------------------------------------------------ services


def lease_public(lease: ChainLeaseRow, *, now: int) -> LeasePublic:
    """The lease with what accrued by `now` (chain time) and when its deposit runs out."""
    rate, deposit, paid = int(lease.rate_wei_per_s), int(lease.deposit_wei), int(lease.paid_wei)
    running = lease.state == "running" and rate > 0
    # as LeaseEscrow counts: down seconds are not paid and push the run-out later; a
    # failed lease earns up to its failure, less the down time before the failing stretch
    runs_out = lease.accepted_at + deposit // rate + lease.down_s if running else 0
    until, down = min(now, runs_out), lease.down_s
    if lease.failed_at:
        until, down = lease.failed_at, lease.down_s - (lease.down_to - lease.failed_at)
    accrued = max(0, rate * max(0, until - lease.accepted_at - down) - paid) if running else 0
    return LeasePublic(
        lease_id=lease.lease_id,
        state=cast(Literal["offered", "running", "ended"], lease.state),
        renter=lease.renter,
        provider=lease.provider,
        rate_wei_per_s=lease.rate_wei_per_s,
        deposit_wei=lease.deposit_wei,
        paid_wei=lease.paid_wei,
        accrued_wei=str(accrued),
        collateral_wei=lease.collateral_wei,
        accept_by=lease.accept_by,
        accepted_at=lease.accepted_at,
        serving_at=lease.serving_at,
        runs_out_at=runs_out,
        end_reason=lease.end_reason,
        down_s=lease.down_s,
        failed_at=lease.failed_at,
        failover_cap_wei=lease.failover_cap_wei,
        next_lease_id=lease.next_lease_id,
    )


def service_public(row: ServiceRow, *, lease: ChainLeaseRow | None, now: int) -> ServicePublic:
    """A deployment with its health, route and lease."""
    host = urlsplit(row.endpoint).hostname if row.endpoint else None
    route = (
        f"http://{host}:{row.host_port}"
        if host and row.host_port is not None and row.status in LIVE_SERVICE
        else None
    )
    return ServicePublic(
        id=row.id,
        name=row.name,
        renter=row.renter,
        status=cast(ServiceStatusName, row.status),
        reason=row.reason,
        spec=ServiceSpec.model_validate(row.spec),
        spec_hash=row.spec_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
        provider=row.provider,
        endpoint=row.endpoint,
        route=route,
        distance_km=round(row.distance_km, 3) if row.distance_km is not None else None,
        energy_level=row.energy_level,
        rate_wei_per_s=row.rate_wei_per_s,
        reserved_until=row.reserved_until,
        lease_id=row.lease_id,
        failover_from=row.failover_from,
        snapshot_at=(row.snapshot or {}).get("taken_at"),
        health=ServiceHealthPublic(
            state=row.state,
            host_port=row.host_port,
            restarts=row.restarts,
            uptime_s=row.uptime_s,
            last_error=row.last_error,
            reported_at=row.reported_at,
            probe_healthy=row.probe_healthy,
            probed_at=row.probed_at,
            probe_detail=row.probe_detail,
            first_healthy_at=row.first_healthy_at,
        ),
        lease=lease_public(lease, now=now) if lease is not None else None,
    )


def image_pull_public(pull: ImagePull | None, pullers: list[str]) -> ImagePullPublic | None:
    """The pull the chosen `pullers` must do first (None: nobody must pull)."""
    if pull is None or not pullers:
        return None
    return ImagePullPublic(
        bytes=pull.bytes,
        seconds=round(pull.seconds, 3),
        providers=pullers,
        size_assumed=pull.size_assumed,
    )


def placement_public(
    row: ServiceRow, *, energy_basis: str, pull: ImagePull | None = None
) -> ServicePlacementPublic:
    """What a deploy answers: the placement (or why there is none), its hold, and the
    image `pull` the chosen provider must do first."""
    return ServicePlacementPublic(
        image_pull=image_pull_public(pull, [row.provider] if row.provider else []),
        name=row.name,
        status=cast(ServiceStatusName, row.status),
        spec_hash=row.spec_hash,
        provider=row.provider,
        endpoint=row.endpoint or None,
        distance_km=round(row.distance_km, 3) if row.distance_km is not None else None,
        energy_level=row.energy_level,
        energy_basis=energy_basis,
        rate_wei_per_s=row.rate_wei_per_s,
        reason=row.reason,
        reserved_until=row.reserved_until,
    )
