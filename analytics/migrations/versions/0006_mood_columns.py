"""Caller mood kept as figures: a turn's tone label and whether the caller was frustrated, beside the content the
retention purge removes (analytics/retention.py), so the mood KPIs of a period stay computable after it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("sentiment", sa.String(8), nullable=True))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("frustrated", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("frustrated")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("sentiment")
