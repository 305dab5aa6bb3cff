"""The store: one database (SQLite or PostgreSQL) holding teams, keys and the ledger.

`Store.open` parses the URL, connects, and migrates the schema to head, or raises a
StoreError with one sentence an operator can act on (never a driver traceback).
All calls are synchronous (SQLAlchemy Core); the gateway makes them from a worker
thread, never on the event loop's hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from gateway.store import migrate
from gateway.store.engine import describe, make_engine, parse_url
from gateway.store.errors import ConflictError, DatabaseUnavailable
from gateway.store.schema import changes

log = logging.getLogger("gateway.store")


def reason(exc: BaseException) -> str:
    """The driver's own first line (e.g. 'connection refused'), without SQL or parameters."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


class Store:
    def __init__(self, url: URL, engine: Engine) -> None:
        self.url = url
        self.engine = engine

    @classmethod
    def open(cls, raw_url: str, *, migrate_schema: bool = True) -> Store:
        url = parse_url(raw_url)
        engine = make_engine(url)
        try:
            if migrate_schema:
                migrate.upgrade(engine)
            else:
                with engine.connect() as connection:
                    connection.execute(select(1))
        except SQLAlchemyError as exc:
            engine.dispose()
            raise DatabaseUnavailable(
                f"cannot use the database {describe(url)}: {reason(exc)}"
            ) from None
        return cls(url, engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        return describe(self.url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction; SQLAlchemy errors become StoreError with the driver's reason."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError as exc:  # a concurrent writer took the same name first
            raise ConflictError(f"conflicts with an existing entry: {reason(exc)}") from None
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"database {describe(self.url)}: {reason(exc)}") from None

    @contextmanager
    def driver(self, write: bool = True) -> Iterator[Any]:
        """A driver (DBAPI) cursor inside one transaction, committed at the end: for the
        ledger's batch insert and the key cache's poll of the change counter, both run
        every FLUSH_S or POLL_S. SQLAlchemy's Connection, its transaction and its events
        cost ~400k instructions a transaction, more than a batch of ten rows. A write
        takes SQLite's write lock up front, as the `begin` event does for begin() (see
        gateway.store.engine); a read on SQLite is one statement in autocommit mode, its
        own snapshot, and takes no write lock. Driver errors become DatabaseUnavailable
        with the driver's reason, as in begin()."""
        error = self.engine.dialect.loaded_dbapi.Error
        try:
            raw = self.engine.raw_connection()  # pooled; PostgreSQL's is pinged first
        except (SQLAlchemyError, error) as exc:  # the pool raises the driver's own errors
            raise DatabaseUnavailable(f"database {describe(self.url)}: {reason(exc)}") from None
        connection = raw.dbapi_connection  # the driver's own: no proxy lookups per call
        assert connection is not None  # a checked-out connection has one
        try:
            cursor = connection.cursor()
            if write and self.dialect == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            connection.commit()
        except error as exc:
            try:
                connection.rollback()
            except error:  # a connection gone mid-transaction: the pool replaces it
                raw.invalidate()
            raise DatabaseUnavailable(f"database {describe(self.url)}: {reason(exc)}") from None
        finally:
            raw.close()  # back to the pool

    def version(self) -> int:
        """The change counter: moves on every edit of teams or keys, by any process."""
        with self.driver(write=False) as cursor:
            cursor.execute("SELECT version FROM changes WHERE id = 1")
            row = cursor.fetchone()
        if row is None:
            raise DatabaseUnavailable(f"database {self.describe()}: the change counter is missing")
        return int(row[0])

    def close(self) -> None:
        self.engine.dispose()


def bump(connection: Connection) -> None:
    """Call inside every transaction that changes teams or keys."""
    connection.execute(
        update(changes).where(changes.c.id == 1).values(version=changes.c.version + 1)
    )
