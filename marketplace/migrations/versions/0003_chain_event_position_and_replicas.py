"""chain events unique by position; per-replica chain state

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 10:00:00

Each indexed log is identified by (block number, log index): a unique index on them lets
the indexer record a log with insert-or-ignore, so re-indexing a range never duplicates
it. A database indexed before this revision may already hold duplicates; the copies
(all but the first row of each position) are dropped before the index is built.

``chain_replicas`` holds each replica slot's state. It and the storage nodes' audit
counters are derived from events this database indexed before it knew them, so the
upgrade drops the indexer cursor: on its next start the indexer forgets what it derived
from the chain and re-indexes from the deployment block (as after a devnet reset), which
also undoes any effects that duplicated events had counted twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM chain_events WHERE id NOT IN "
        "(SELECT keep FROM (SELECT MIN(id) AS keep FROM chain_events "
        "GROUP BY block_number, log_index) AS firsts)"
    )
    op.create_index(
        "uq_chain_events_position", "chain_events", ["block_number", "log_index"], unique=True
    )
    op.create_table(
        "chain_replicas",
        sa.Column("chain_job_id", sa.BigInteger(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=42), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("result_hash", sa.String(length=66), nullable=True),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["chain_job_id"], ["chain_jobs.chain_job_id"]),
        sa.PrimaryKeyConstraint("chain_job_id", "slot"),
    )
    op.create_index(
        op.f("ix_chain_replicas_provider"), "chain_replicas", ["provider"], unique=False
    )
    op.execute("DELETE FROM indexer_cursor")


def downgrade() -> None:
    op.drop_index(op.f("ix_chain_replicas_provider"), table_name="chain_replicas")
    op.drop_table("chain_replicas")
    op.drop_index("uq_chain_events_position", table_name="chain_events")
