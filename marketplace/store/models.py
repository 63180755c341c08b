"""Tables of the marketplace.

Token amounts can exceed 64 bits, so they are stored as decimal strings (exact on
SQLite and PostgreSQL alike); prices per CPU-second fit in BigInteger.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class ProviderRow(Base):
    __tablename__ = "providers"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(512))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    region: Mapped[str] = mapped_column(String(64))
    total_cpu: Mapped[float] = mapped_column(Float)
    total_memory_mb: Mapped[int] = mapped_column(BigInteger)
    total_gpu: Mapped[int] = mapped_column(Integer)
    total_disk_mb: Mapped[int] = mapped_column(BigInteger)
    free_cpu: Mapped[float] = mapped_column(Float)
    free_memory_mb: Mapped[int] = mapped_column(BigInteger)
    free_gpu: Mapped[int] = mapped_column(Integer)
    free_disk_mb: Mapped[int] = mapped_column(BigInteger)
    price_wei: Mapped[int] = mapped_column(BigInteger)
    images: Mapped[list[str]] = mapped_column(JSON)
    registered_at: Mapped[float] = mapped_column(Float)
    last_heartbeat_at: Mapped[float] = mapped_column(Float)
    heartbeats: Mapped[int] = mapped_column(Integer, default=0)
    staked_wei: Mapped[str] = mapped_column(String(80), default="0")
    stake_active: Mapped[bool] = mapped_column(Boolean, default=False)
    jobs_completed: Mapped[int] = mapped_column(Integer, default=0)
    jobs_failed: Mapped[int] = mapped_column(Integer, default=0)
    jobs_slashed: Mapped[int] = mapped_column(Integer, default=0)


class SignerClock(Base):
    """Last accepted request timestamp per signer: a replayed request is refused."""

    __tablename__ = "signer_clocks"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    last_timestamp_ms: Mapped[int] = mapped_column(BigInteger)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    renter: Mapped[str] = mapped_column(String(42), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(66), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    matched_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    chain_job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    # a held job's planned start (unix s; None: now) and the energy trade behind it
    start_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    assignments: Mapped[list[AssignmentRow]] = relationship(
        back_populates="job", order_by="AssignmentRow.slot", cascade="all, delete-orphan"
    )


class AssignmentRow(Base):
    __tablename__ = "assignments"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(42), index=True)
    endpoint: Mapped[str] = mapped_column(String(512))
    distance_km: Mapped[float] = mapped_column(Float)
    energy_level: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    reputation: Mapped[float] = mapped_column(Float)
    price_wei: Mapped[int] = mapped_column(BigInteger)
    job: Mapped[JobRow] = relationship(back_populates="assignments")


class ChainJobRow(Base):
    """A job as the escrow contract sees it, kept current by the indexer."""

    __tablename__ = "chain_jobs"

    chain_job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    renter: Mapped[str] = mapped_column(String(42), index=True)
    spec_hash: Mapped[str] = mapped_column(String(66), index=True)
    deposit_wei: Mapped[str] = mapped_column(String(80))
    deadline: Mapped[int] = mapped_column(BigInteger)
    replicas: Mapped[int] = mapped_column(Integer)
    named_providers: Mapped[list[str]] = mapped_column(JSON)
    accepted: Mapped[list[str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(24))
    result_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_block: Mapped[int] = mapped_column(BigInteger)
    slots: Mapped[list[ChainReplicaRow]] = relationship(
        order_by="ChainReplicaRow.slot", lazy="selectin", cascade="all, delete-orphan"
    )


class ChainReplicaRow(Base):
    """One replica slot of a chain job: who took it and how far it got, from the escrow's
    events (accepted, committed, revealed, then paid, slashed or released)."""

    __tablename__ = "chain_replicas"

    chain_job_id: Mapped[int] = mapped_column(
        ForeignKey("chain_jobs.chain_job_id"), primary_key=True
    )
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(42), index=True)
    state: Mapped[str] = mapped_column(String(24))
    result_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_block: Mapped[int] = mapped_column(BigInteger)


class ChainEventRow(Base):
    """One indexed log. A log is identified by its place on chain, (block, log index):
    the unique index makes recording the same log twice a no-op, not a duplicate."""

    __tablename__ = "chain_events"
    __table_args__ = (
        Index("ix_chain_events_job", "chain_job_id", "block_number"),
        Index("uq_chain_events_position", "block_number", "log_index", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(48))
    chain_job_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)


class IndexerCursor(Base):
    """Where the indexer stopped: resumes here after a restart."""

    __tablename__ = "indexer_cursor"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    escrow: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))


class StorageNodeRow(Base):
    """A storage node: its quota, free space, place, and what renters and audits saw of it."""

    __tablename__ = "storage_nodes"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(512))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    region: Mapped[str] = mapped_column(String(64), index=True)
    capacity_bytes: Mapped[int] = mapped_column(BigInteger)
    free_bytes: Mapped[int] = mapped_column(BigInteger)
    shards: Mapped[int] = mapped_column(BigInteger, default=0)
    registered_at: Mapped[float] = mapped_column(Float)
    last_heartbeat_at: Mapped[float] = mapped_column(Float, index=True)
    heartbeats: Mapped[int] = mapped_column(Integer, default=0)
    fetch_ok: Mapped[int] = mapped_column(BigInteger, default=0)
    fetch_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    fetch_corrupt: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    audits_passed: Mapped[int] = mapped_column(BigInteger, default=0)
    audits_failed: Mapped[int] = mapped_column(BigInteger, default=0)


class ServiceNameRow(Base):
    """A service name and the renter who first deployed under it: it stays theirs."""

    __tablename__ = "service_names"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    registered_at: Mapped[float] = mapped_column(Float)


class ServiceRow(Base):
    """One deployment of a named service: its placement, the capacity it holds on its
    provider until the provider counts it itself, its lease, and what the provider
    reported and the prober saw. A name has many rows over time, at most one live."""

    __tablename__ = "services"
    __table_args__ = (Index("ix_services_provider_reserved", "provider", "reserved"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), index=True)
    renter: Mapped[str] = mapped_column(String(42), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(66), index=True)
    status: Mapped[str] = mapped_column(String(24), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # placement
    provider: Mapped[str | None] = mapped_column(String(42), nullable=True)
    endpoint: Mapped[str] = mapped_column(String(512), default="")
    distance_km: Mapped[float | None] = mapped_column(Float, nullable=True)
    energy_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rate_wei_per_s: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the reservation: held on the provider's free capacity while `reserved`
    reserved: Mapped[bool] = mapped_column(Boolean, default=False)
    reserved_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu: Mapped[float] = mapped_column(Float, default=0.0)
    memory_mb: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu: Mapped[int] = mapped_column(Integer, default=0)
    disk_mb: Mapped[int] = mapped_column(BigInteger, default=0)
    # the lease on chain, once the indexer linked it
    lease_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    # the provider's last report
    host_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    uptime_s: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    reported_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the prober's last look
    probe_healthy: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    probed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    probe_detail: Mapped[str] = mapped_column(Text, default="")
    first_healthy_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    serving_reported_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # a failover's deployment: the lease of the deployment it replaced
    failover_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # the renter's copy of its inputs for a failover (path -> base64), if it left one
    inputs: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # the snapshot secret the renter left for a failover, and the newest snapshot of /data
    snapshot_key: Mapped[str | None] = mapped_column(String(66), nullable=True)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ChainLeaseRow(Base):
    """A lease as LeaseEscrow's events left it, kept current by the indexer."""

    __tablename__ = "chain_leases"

    lease_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    renter: Mapped[str] = mapped_column(String(42), index=True)
    provider: Mapped[str] = mapped_column(String(42), index=True)
    spec_hash: Mapped[str] = mapped_column(String(66), index=True)
    rate_wei_per_s: Mapped[str] = mapped_column(String(80))
    deposit_wei: Mapped[str] = mapped_column(String(80))
    paid_wei: Mapped[str] = mapped_column(String(80), default="0")
    collateral_wei: Mapped[str] = mapped_column(String(80), default="0")
    accept_by: Mapped[int] = mapped_column(BigInteger)
    accepted_at: Mapped[int] = mapped_column(BigInteger, default=0)
    serving_at: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(24))
    end_reason: Mapped[str] = mapped_column(String(32), default="")
    updated_block: Mapped[int] = mapped_column(BigInteger)
    # the watchers' reports: seconds counted down, and when it failed past the grace
    down_s: Mapped[int] = mapped_column(BigInteger, default=0)
    down_to: Mapped[int] = mapped_column(BigInteger, default=0)  # end of the last counted
    failed_at: Mapped[int] = mapped_column(BigInteger, default=0)
    # the failover the renter agreed to (0: none), and the lease a failover moved it to
    failover_cap_wei: Mapped[str] = mapped_column(String(80), default="0")
    next_lease_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
