"""Engines for the two databases the gateway speaks: SQLite (default) and PostgreSQL.

SQLite is shared by several worker processes on one host: WAL mode (readers never wait
for the writer), a busy timeout (a writer waits for another instead of failing), and
every transaction opened with BEGIN IMMEDIATE, which takes the write lock up front.
A deferred transaction that reads and then writes can otherwise fail with "database is
locked" at once, without the busy timeout being honoured, when another process wrote
in between. The transactions here are a few milliseconds, so this costs nothing.

PostgreSQL goes through psycopg (v3): `postgresql://` URLs are given that driver.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import QueuePool

from gateway.store.errors import StoreError

SQLITE_BUSY_MS = 10_000


def parse_url(raw: str) -> URL:
    """A database URL the gateway can use, or a StoreError saying why not."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(
            f"GATEWAY_DATABASE_URL={_safe(raw)!r} is not a database URL "
            "(e.g. sqlite:///./gateway.db or postgresql://user:pass@host/db)"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise StoreError(
                "GATEWAY_DATABASE_URL names an in-memory SQLite database, which worker "
                "processes and the CLI cannot share: give a file, sqlite:///path.db"
            )
        return url.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    raise StoreError(
        f"GATEWAY_DATABASE_URL: the {backend!r} database is not supported "
        "(use sqlite:/// or postgresql://)"
    )


def _safe(raw: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return raw.split("@")[-1]


def describe(url: URL) -> str:
    """The URL as the operator wrote it (no driver name), without its password."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def sqlite_path(url: URL) -> str | None:
    return url.database if url.get_backend_name() == "sqlite" else None


def make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # Small pool: the gateway talks to the database from a background thread or two.
    return create_engine(
        url, pool_size=2, max_overflow=4, pool_pre_ping=True, connect_args={"connect_timeout": 5}
    )


def _sqlite_engine(url: URL) -> Engine:
    # The sqlite3 module binds an int, float or str as it is, but for anything else, None
    # included, it first looks for an adapter: a failed dict lookup, then two failed
    # attribute lookups (__adapt__, __conform__) whose AttributeErrors are formatted and
    # dropped, ~3k instructions per NULL bound (a ledger row has three or more). With an
    # adapter registered for None the first lookup finds it; `{}.get` returns None for
    # None (a C call, no Python frame). Process-wide, and a no-op for every other user.
    sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))
    path = url.database or ""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StoreError(f"GATEWAY_DATABASE_URL: the folder {folder} does not exist")
    # A small pool, as for PostgreSQL: opening a connection is not cheap after all (the
    # PRAGMAs, and SQLite parses the whole schema again on a new connection's first
    # statement: some 2 M instructions, more than a flush of a hundred ledger rows), and
    # the key poll and the ledger flush each open one every 0.5 s. A connection is used
    # by one thread at a time (checked out for one transaction), so check_same_thread
    # can be off.
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=2,
        max_overflow=4,
        connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL's recommended durability trade-off
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
