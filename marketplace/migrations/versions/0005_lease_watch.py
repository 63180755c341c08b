"""leases: down time, failure and failover; deployments: the lease a failover replaced

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 00:00:00

``chain_leases`` gains what the watchers' reports did to a lease (seconds counted down,
when it failed past the grace period), the failover rate cap the renter agreed to, and
the lease a failover moved it to; ``services`` gains the lease a failover deployment
replaced, the copy of its inputs and the snapshot secret a renter left for a failover,
and where the newest snapshot of its /data is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_leases") as batch:
        batch.add_column(sa.Column("down_s", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("down_to", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("failed_at", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("failover_cap_wei", sa.String(length=80), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("next_lease_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("failover_from", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("snapshot_key", sa.String(length=66), nullable=True))
        batch.add_column(sa.Column("snapshot", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("services") as batch:
        batch.drop_column("snapshot")
        batch.drop_column("snapshot_key")
        batch.drop_column("inputs")
        batch.drop_column("failover_from")
    with op.batch_alter_table("chain_leases") as batch:
        for column in ("next_lease_id", "failover_cap_wei", "failed_at", "down_to", "down_s"):
            batch.drop_column(column)
