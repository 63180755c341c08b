"""Response models of the HTTP API (request models live in ``protocol.schemas``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from protocol.schemas import Capacity, JobSpec, Location


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

    chain_job_id: int = Field(ge=1, le=2**64 - 1)


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


class QuotePublic(BaseModel):
    spec_hash: str
    candidates: list[AssignmentPublic]
    price_wei: int | None
    reason: str


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
