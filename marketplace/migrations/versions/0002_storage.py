"""storage nodes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_nodes",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("capacity_bytes", sa.BigInteger(), nullable=False),
        sa.Column("free_bytes", sa.BigInteger(), nullable=False),
        sa.Column("shards", sa.BigInteger(), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("last_heartbeat_at", sa.Float(), nullable=False),
        sa.Column("heartbeats", sa.Integer(), nullable=False),
        sa.Column("fetch_ok", sa.BigInteger(), nullable=False),
        sa.Column("fetch_failed", sa.BigInteger(), nullable=False),
        sa.Column("fetch_corrupt", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("audits_passed", sa.BigInteger(), nullable=False),
        sa.Column("audits_failed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_index(
        op.f("ix_storage_nodes_last_heartbeat_at"),
        "storage_nodes",
        ["last_heartbeat_at"],
        unique=False,
    )
    op.create_index(op.f("ix_storage_nodes_region"), "storage_nodes", ["region"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_storage_nodes_region"), table_name="storage_nodes")
    op.drop_index(op.f("ix_storage_nodes_last_heartbeat_at"), table_name="storage_nodes")
    op.drop_table("storage_nodes")
