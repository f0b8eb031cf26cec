"""Trainers' labels on reviewed turns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_labels",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("turn_index", sa.Integer, primary_key=True),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("labelled_by", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("review_labels")
