"""Turns written as they happen; a call's status and the gateway holding it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="ended"))
        batch.add_column(sa.Column("worker", sa.String(128), nullable=False, server_default=""))
        batch.create_index("ix_calls_status", ["status"])
    op.create_table(
        "turns",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("index", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input", sa.String(16), nullable=False),
        sa.Column("transcript", sa.Text, nullable=False, server_default=""),
        sa.Column("asr_confidence", sa.Float, nullable=False, server_default="0"),
        sa.Column("intent", sa.String(64), nullable=False, server_default=""),
        sa.Column("nlu_confidence", sa.Float, nullable=False, server_default="0"),
        sa.Column("decision", sa.String(96), nullable=False, server_default=""),
        sa.Column("response_ms", sa.Float, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("details", sa.JSON()),
    )
    op.create_index("ix_turns_intent", "turns", ["intent"])


def downgrade() -> None:
    op.drop_table("turns")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_status")
        batch.drop_column("worker")
        batch.drop_column("status")
