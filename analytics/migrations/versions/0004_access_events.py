"""The access audit: who opened which caller's data.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
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
        "access_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=True),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False),
    )
    op.create_index("ix_access_events_at", "access_events", ["at"])
    op.create_index("ix_access_events_username", "access_events", ["username"])
    op.create_index("ix_access_events_call_sid", "access_events", ["call_sid"])


def downgrade() -> None:
    op.drop_table("access_events")
