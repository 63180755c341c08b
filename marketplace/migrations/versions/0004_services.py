"""services: names, deployments and leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-13 10:00:00

``service_names`` keeps each service name's owner (the renter who first deployed under
it); ``services`` holds every deployment of a name (placement, reservation, lease link,
the provider's last report, the prober's last look); ``chain_leases`` is LeaseEscrow's
state per lease as the indexer follows it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_names",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index(op.f("ix_service_names_owner"), "service_names", ["owner"], unique=False)
    op.create_table(
        "services",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("renter", sa.String(length=42), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=66), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("provider", sa.String(length=42), nullable=True),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=True),
        sa.Column("energy_level", sa.Integer(), nullable=True),
        sa.Column("rate_wei_per_s", sa.BigInteger(), nullable=True),
        sa.Column("reserved", sa.Boolean(), nullable=False),
        sa.Column("reserved_until", sa.Float(), nullable=True),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory_mb", sa.BigInteger(), nullable=False),
        sa.Column("gpu", sa.Integer(), nullable=False),
        sa.Column("disk_mb", sa.BigInteger(), nullable=False),
        sa.Column("lease_id", sa.BigInteger(), nullable=True),
        sa.Column("host_port", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("uptime_s", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.Float(), nullable=True),
        sa.Column("probe_healthy", sa.Boolean(), nullable=True),
        sa.Column("probed_at", sa.Float(), nullable=True),
        sa.Column("probe_detail", sa.Text(), nullable=False),
        sa.Column("first_healthy_at", sa.Float(), nullable=True),
        sa.Column("serving_reported_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("name", "renter", "spec_hash", "status", "lease_id"):
        op.create_index(op.f(f"ix_services_{column}"), "services", [column], unique=False)
    op.create_index(
        "ix_services_provider_reserved", "services", ["provider", "reserved"], unique=False
    )
    op.create_table(
        "chain_leases",
        sa.Column("lease_id", sa.BigInteger(), nullable=False),
        sa.Column("renter", sa.String(length=42), nullable=False),
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("spec_hash", sa.String(length=66), nullable=False),
        sa.Column("rate_wei_per_s", sa.String(length=80), nullable=False),
        sa.Column("deposit_wei", sa.String(length=80), nullable=False),
        sa.Column("paid_wei", sa.String(length=80), nullable=False),
        sa.Column("collateral_wei", sa.String(length=80), nullable=False),
        sa.Column("accept_by", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.BigInteger(), nullable=False),
        sa.Column("serving_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("end_reason", sa.String(length=32), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("lease_id"),
    )
    for column in ("renter", "provider", "spec_hash"):
        op.create_index(op.f(f"ix_chain_leases_{column}"), "chain_leases", [column], unique=False)


def downgrade() -> None:
    op.drop_table("chain_leases")
    op.drop_table("services")
    op.drop_index(op.f("ix_service_names_owner"), table_name="service_names")
    op.drop_table("service_names")
