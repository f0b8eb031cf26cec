"""Call recordings (RECORDING__ENABLED): one row a recorded call, its WAV beside the call in the same store, so the
purge removes it with the call's transcripts in one transaction and every gateway and dashboard reads the same.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("silenced", sa.Integer(), nullable=False),
        sa.Column("wav", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recordings")
