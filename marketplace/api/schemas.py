"""Response models of the HTTP API (request models live in ``protocol.schemas``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from protocol.provider_api import Base64
from protocol.schemas import Capacity, JobSpec, Location
from protocol.services import ServiceName, ServiceSpec
from protocol.snapshots import SecretHex, SnapshotRef

# Chain ids (jobs, leases) count up from 1; this bound is the largest integer every JSON
# reader holds exactly, so the schema's bound and the check are the same number everywhere.
MAX_ID = 2**53 - 1


class ProviderPublic(BaseModel):
    address: str
    endpoint: str
    location: Location
    region: str
    energy_level: int
    total: Capacity
    free: Capacity
    price_wei: int
    images: list[str]
    online: bool
    last_heartbeat_at: float
    staked_wei: str
    stake_active: bool
    stake_verified: bool
    jobs_completed: int
    jobs_failed: int
    jobs_slashed: int
    uptime: float
    reputation: float


class AssignmentPublic(BaseModel):
    slot: int
    provider: str
    endpoint: str
    distance_km: float
    energy_level: int
    score: float
    reputation: float
    price_wei: int
    cost_wei: int


class ChainEventPublic(BaseModel):
    block_number: int
    tx_hash: str
    name: str
    args: dict[str, Any]


class ReplicaSlotPublic(BaseModel):
    """One replica slot of an escrow job, as the escrow's events left it."""

    slot: int
    provider: str
    state: Literal["accepted", "committed", "revealed", "paid", "slashed", "released"] = Field(
        description="accepted, committed, revealed, then paid, slashed or released "
        "(collateral unlocked without pay: a cancelled job, an unbacked dispute dissent)"
    )
    result_hash: str | None = Field(description="the revealed result hash, once revealed")
    updated_block: int = Field(description="block of the slot's last change")


class ChainJobPublic(BaseModel):
    chain_job_id: int
    state: str
    deposit_wei: str
    deadline: int
    replicas: int
    accepted: list[str]
    result_hash: str | None
    slots: list[ReplicaSlotPublic] = Field(
        default=[], description="the accepted replica slots, by slot number"
    )


class SignedAssignmentPublic(BaseModel):
    """The matcher's signature of a replicated job's providers (JobEscrow's `Assignment`)."""

    providers: list[str]
    expires: int
    signature: str


class DisputeRequest(BaseModel):
    """A renter's request for verifiers of its job (signed, purpose `dcloud/job.dispute`)."""

    chain_job_id: int = Field(ge=1, le=MAX_ID)


class VerifiersPublic(BaseModel):
    """Two verifiers drawn by the matcher, signed for JobEscrow's `dispute`."""

    chain_job_id: int
    providers: list[str]
    endpoints: list[str]
    expires: int
    signature: str


JobStatusName = Literal[
    "pending",
    "matched",
    "unmatched",
    "expired",
    "funded",
    "accepted",
    "committed",
    "revealed",
    "disputed",
    "settled",
    "cancelled",
]
"""A job's status: pending, then matched or unmatched; a matched job nobody funds in time
is expired; a funded one follows its escrow state (funded ... settled or cancelled)."""


class PlanPublic(BaseModel):
    """When and where a job with a start window (or a distance bound) runs, and the energy
    trade against running it now at the nearest candidate provider."""

    start_at: int = Field(description="planned start, unix seconds (now for a job not held)")
    provider: str
    region: str
    km_added: float = Field(description="km beyond the nearest candidate provider")
    cost_eur: float = Field(description="expected energy cost over the time limit, EUR")
    cost_now_eur: float = Field(description="the same, starting now at the nearest provider")
    saving_pct: float
    co2_g: float | None = Field(description="expected CO2, grams (null: no carbon series)")
    co2_now_g: float | None
    basis: str = Field(description="what the plan minimised: price, carbon or mix")


PLAN_FIELD = Field(
    default=None,
    description="jobs with start_by or max_km: the planned start and place and the energy "
    "trade; null for others",
)


class JobPublic(BaseModel):
    id: str
    renter: str
    status: JobStatusName
    reason: str = Field(
        description="why the job is unmatched (the constraint no provider meets) or expired"
    )
    spec: JobSpec
    spec_hash: str
    created_at: float
    matched_at: float | None
    assignments: list[AssignmentPublic]
    price_wei: int | None
    assignment: SignedAssignmentPublic | None = Field(
        default=None,
        description="replicated jobs: the providers signed by the matcher, to pass to fund",
    )
    chain: ChainJobPublic | None = None
    events: list[ChainEventPublic] = []
    start_at: int | None = Field(
        default=None,
        description="a held job's planned start (unix s): fund it with JobEscrow.fundAt; "
        "null: it starts now",
    )
    plan: PlanPublic | None = PLAN_FIELD


class ImagePullPublic(BaseModel):
    """What the chosen providers that lack a renter's image must pull before they start."""

    bytes: int = Field(description="the image's size: the spec's image_bytes, else assumed")
    seconds: float = Field(
        description="estimated pull time at the marketplace's pull rate "
        "(DCLOUD_IMAGE_PULL_MB_PER_S); matching charged it in these providers' scores"
    )
    providers: list[str] = Field(description="the chosen providers that must pull it")
    size_assumed: bool = Field(
        description="true when the spec gave no image_bytes and a default size was assumed"
    )


IMAGE_PULL_FIELD = Field(
    default=None,
    description="null when every chosen provider already holds the image (or it is one "
    "providers offer); else the pull of a renter's image that some must do first",
)


class QuotePublic(BaseModel):
    spec_hash: str
    candidates: list[AssignmentPublic]
    price_wei: int | None
    reason: str
    image_pull: ImagePullPublic | None = IMAGE_PULL_FIELD
    plan: PlanPublic | None = PLAN_FIELD


class RegionPublic(BaseModel):
    id: str
    name: str
    continent: str
    location: Location
    price_per_mwh: float
    demand_mw: float | None
    energy_level: int


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class ProviderList(Page):
    items: list[ProviderPublic]


class JobList(Page):
    items: list[JobPublic]


class Health(BaseModel):
    status: str
    database: str
    chain: dict[str, Any] | None


# ------------------------------------------------------------------------ services

ServiceStatusName = Literal[
    "placed", "leased", "serving", "ending", "ended", "expired", "unmatched"
]
"""A deployment's status: placed (capacity reserved), leased (lease opened on chain),
serving (reported serving on chain), ending (its owner stopped it; the lease decides when
it ends), then ended or expired (no lease accepted in time); unmatched if no provider
could take it."""


class ServiceQuotePublic(BaseModel):
    """Where a service would run and its rate per second, nothing reserved."""

    spec_hash: str = Field(description="the lease's spec hash on chain")
    provider: str | None
    endpoint: str | None
    distance_km: float | None
    energy_level: int | None = Field(description="the level that ranked the provider")
    energy_basis: str = Field(description="which energy levels ranked the providers")
    rate_wei_per_s: int | None = Field(description="the provider's ask times the CPU, per second")
    reason: str = Field(description="why no provider can take it (empty when one can)")
    image_pull: ImagePullPublic | None = IMAGE_PULL_FIELD


class ServicePlacementPublic(ServiceQuotePublic):
    """A recorded deployment: the chosen provider, its rate, and until when it is held."""

    name: str
    status: ServiceStatusName
    reserved_until: float | None = Field(
        description="the provider's capacity is held until then for the lease to be accepted"
    )


class ServiceHealthPublic(BaseModel):
    """What the provider last reported and what the prober last saw."""

    state: str | None = Field(description="the provider's report: starting, healthy, ...")
    host_port: int | None
    restarts: int
    uptime_s: float
    last_error: str
    reported_at: float | None
    probe_healthy: bool | None = Field(description="the prober's last look (None: not yet)")
    probed_at: float | None
    probe_detail: str
    first_healthy_at: float | None


class LeasePublic(BaseModel):
    """A lease on LeaseEscrow as the indexer last saw it (amounts in token wei)."""

    lease_id: int
    state: Literal["offered", "running", "ended"]
    renter: str
    provider: str
    rate_wei_per_s: str
    deposit_wei: str
    paid_wei: str = Field(description="credited to the provider so far, fees included")
    accrued_wei: str = Field(description="earned and not yet settled, now")
    collateral_wei: str
    accept_by: int
    accepted_at: int
    serving_at: int
    runs_out_at: int = Field(description="when the deposit runs out (0 unless running)")
    end_reason: str
    down_s: int = Field(description="seconds a quorum of watchers reported it down (not paid)")
    failed_at: int = Field(description="down past the grace period since then (0: not failed)")
    failover_cap_wei: str = Field(description="the renter's failover rate cap (0: none)")
    next_lease_id: int | None = Field(description="the lease a failover moved it to")


class ServicePublic(BaseModel):
    id: str
    name: str
    renter: str
    status: ServiceStatusName
    reason: str
    spec: ServiceSpec
    spec_hash: str
    created_at: float
    updated_at: float
    ended_at: float | None
    provider: str | None
    endpoint: str
    route: str | None = Field(description="http://host:port the gateway sends traffic to")
    distance_km: float | None
    energy_level: int | None
    rate_wei_per_s: int | None
    reserved_until: float | None
    lease_id: int | None
    failover_from: int | None = Field(
        description="the lease of the deployment this one replaced when its provider failed"
    )
    snapshot_at: float | None = Field(
        description="when the newest snapshot of /data was taken (None: none yet)"
    )
    health: ServiceHealthPublic
    lease: LeasePublic | None


class ServiceList(Page):
    items: list[ServicePublic]


class ServiceInputsRequest(BaseModel):
    """The owner's copy of its service's inputs for a failover (signed, purpose
    `dcloud/service.inputs`): exactly the files the spec declares, base64-encoded."""

    name: ServiceName
    lease_id: int = Field(ge=1, le=MAX_ID, description="the lease the service runs under")
    inputs: dict[str, Base64] = Field(max_length=256)
    snapshot_key: SecretHex | None = Field(
        default=None, description="the snapshot secret (protocol.snapshots), if it asks for them"
    )


class ServiceSnapshotReport(BaseModel):
    """Its provider's word on the newest snapshot of a service's /data (signed, purpose
    `dcloud/service.snapshot`)."""

    name: ServiceName
    lease_id: int = Field(ge=1, le=MAX_ID)
    snapshot: SnapshotRef


class ServiceStopRequest(BaseModel):
    """The owner's request to stop its service (signed, purpose `dcloud/service.stop`)."""

    name: ServiceName
