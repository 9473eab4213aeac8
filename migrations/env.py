"""Alembic environment for trafficprn.

Normally driven from Python (`trafficprn.store.db.upgrade(url)`), which hands a live
connection in `config.attributes["connection"]`. When run through the `alembic` command
(alembic.ini at the repository root), the URL comes from `-x db=URL` or the
TRAFFICPRN_DATABASE_URL environment variable; there is no URL in any file.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy.engine import Connection

from trafficprn.store.db import make_engine
from trafficprn.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("db") or os.environ.get("TRAFFICPRN_DATABASE_URL")
    if not url:
        raise SystemExit("no database URL: pass -x db=URL or set TRAFFICPRN_DATABASE_URL")
    return url


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as conn:
            _configure(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=str(_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
