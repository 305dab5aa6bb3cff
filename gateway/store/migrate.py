"""Create and migrate the schema on start, with Alembic, programmatically.

Several processes may start at once (`--workers N`, replicas, a CLI command beside a
running gateway), so the upgrade runs inside one transaction that first takes a lock:
PostgreSQL's transaction-level advisory lock, SQLite's write lock (BEGIN IMMEDIATE,
see gateway.store.engine). The others wait, then find the schema at head and do nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x67617465_7761795F  # "gateway_": one advisory lock id, used only here

# Alembic says "Context impl SQLiteImpl" at INFO on every start: noise in a gateway's log.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        if current(connection) == head():
            return  # the common case: nothing to do, and no Alembic machinery to load
        command.upgrade(_config(connection), "head")
