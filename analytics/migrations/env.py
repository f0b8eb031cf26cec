"""Alembic environment: run by analytics.store.upgrade_database (never by hand-edited ini files)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from analytics.models import Base

config = context.config
connection = config.attributes.get("connection")


def run_migrations(conn) -> None:  # type: ignore[no-untyped-def]
    # SQLite cannot ALTER most things in place: batch mode copies the table.
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run_migrations(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run_migrations(conn)
    engine.dispose()
