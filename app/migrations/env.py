"""Alembic environment: runs on a connection handed in by app.db, or on a URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from app.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for most ALTERs
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from app.db import create_db_engine

    url = config.get_main_option("sqlalchemy.url") or os.environ.get("STAND_OS_DB_URL")
    if not url:
        raise SystemExit("set sqlalchemy.url or STAND_OS_DB_URL")
    engine = create_db_engine(url)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
run_migrations_online()
