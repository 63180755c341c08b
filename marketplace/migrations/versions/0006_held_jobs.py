"""jobs: a planned start (held jobs) and the energy plan behind it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 03:00:00

``jobs`` gains ``start_at``, the start the marketplace planned for a job with a start
window (unix seconds; null: it starts now), and ``plan``, the trade that start was chosen
by (cost now at the nearest provider against the chosen hour and place, km added).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("start_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("plan", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("plan")
        batch.drop_column("start_at")
