"""Counters in the store's SQL database: one host (SQLite shared by `--workers N`), or
replicas that share PostgreSQL and no Redis.

Admissions and settlements are combined: whatever arrives while a transaction runs
waits for the next one, and each transaction takes every waiting operation
(gateway.counters.batch): it reads the counters they touch once, decides each
operation in turn on the values the previous ones left (the same decision as one
transaction per call), and writes the changes once, as deltas. One call alone is one
short transaction; under load the cost of a transaction is shared by every call in it.

Serialised by the database: SQLite's write lock (BEGIN IMMEDIATE), and on PostgreSQL a
transaction-level advisory lock per scope (key or team), taken in sorted order so two
transactions never wait on each other in a cycle. Reservations are claimed with
DELETE ... RETURNING, so a settlement and a sweep never both release one.

The statements are plain SQL on the driver's own connection: building them with
SQLAlchemy cost more than running them (about 4 ms a call, measured). SQLite runs on
the event loop, the transaction a fraction of a millisecond and never waiting there:
BEGIN IMMEDIATE with no busy timeout, retried after short async sleeps while another
process writes, and only after RETRY_S handed to a worker thread that waits in
SQLite's busy handler. PostgreSQL, across a network, always runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gateway.counters.base import CountersUnavailable
from gateway.counters.batch import Batch, Held, Needs, needs
from gateway.counters.combine import Combiner
from gateway.counters.logic import bucket, reset_s
from gateway.counters.plan import BUCKETS, Ask, BudgetLine, Outcome, RateLine, Settlement
from gateway.store import Store, StoreError
from gateway.store.engine import SQLITE_BUSY_MS, sqlite_path

RETRY_S = 0.05  # SQLite: how long the event loop retries a busy database before a thread waits
SWEEP_LIMIT = 500


def _marks(n: int) -> str:
    return ",".join("?" * n)


class _Db:
    """The batch's statements on one DBAPI cursor, in qmark style (PostgreSQL: %s)."""

    def __init__(self, cursor: Any, pg: bool) -> None:
        self.cursor = cursor
        self.pg = pg

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self.cursor.execute(self._sql(sql), params)
        return list(self.cursor.fetchall())

    def run(self, sql: str, params: Sequence[Any]) -> None:
        self.cursor.execute(self._sql(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(self._sql(sql), rows)

    # -- reads -------------------------------------------------------------------------

    def claim(self, rids: Sequence[str]) -> dict[str, Held]:
        """Delete these reservations, returning what each held."""
        if not rids:
            return {}
        return self._held(
            self.rows(
                f'DELETE FROM reservations WHERE rid IN ({_marks(len(rids))}) RETURNING rid, "until", cost_pusd, budget_keys, slot_scopes',
                rids,
            )
        )

    def claim_expired(self, now: float) -> dict[str, Held]:
        return self._held(
            self.rows(
                'DELETE FROM reservations WHERE rid IN (SELECT rid FROM reservations WHERE "until" <= ? LIMIT ?) RETURNING rid, "until", cost_pusd, budget_keys, slot_scopes',
                (now, SWEEP_LIMIT),
            )
        )

    @staticmethod
    def _held(rows: Iterable[Any]) -> dict[str, Held]:
        def listed(value: Any) -> tuple[str, ...]:
            return tuple(value if isinstance(value, list) else json.loads(value))

        return {
            rid: Held(float(until), int(cost), listed(budgets), listed(scopes))
            for rid, until, cost, budgets, scopes in rows
        }

    def budgets(self, keys: Sequence[str]) -> dict[str, list[int]]:
        if not keys:
            return {}
        return {
            key: [int(spent), int(reserved)]
            for key, spent, reserved in self.rows(
                f'SELECT "key", spent_pusd, reserved_pusd FROM budget_counters WHERE "key" IN ({_marks(len(keys))})',
                keys,
            )
        }

    def windows(self, keys: Sequence[str], after: int) -> dict[tuple[str, int], int]:
        if not keys:
            return {}
        return {
            (key, int(at)): int(amount)
            for key, at, amount in self.rows(
                f'SELECT "key", bucket, amount FROM rate_buckets WHERE "key" IN ({_marks(len(keys))}) AND bucket > ?',
                (*keys, after),
            )
        }

    def busy(self, scopes: Sequence[str], now: float) -> dict[str, int]:
        if not scopes:
            return {}
        found = {
            scope: int(count)
            for scope, count in self.rows(
                f'SELECT scope, COUNT(*) FROM concurrency_slots WHERE scope IN ({_marks(len(scopes))}) AND "until" > ? GROUP BY scope',
                (*scopes, now),
            )
        }
        return {scope: found.get(scope, 0) for scope in scopes}

    # -- writes ------------------------------------------------------------------------

    def write(self, batch: Batch) -> None:
        upserts, updates = [], []
        for key, (spent, reserved) in batch.budget_delta.items():
            line = batch.lines.get(key)
            if line is not None:
                start: Any = line.start if self.pg else line.start.strftime("%Y-%m-%d %H:%M:%S.%f")
                upserts.append((key, line.scope, line.period, start, spent, reserved))
            elif spent or reserved:
                updates.append((spent, reserved, key))
        self.many(
            'INSERT INTO budget_counters ("key", scope, period, "start", spent_pusd, reserved_pusd) VALUES (?, ?, ?, ?, ?, ?) '
            'ON CONFLICT ("key") DO UPDATE SET spent_pusd = budget_counters.spent_pusd + excluded.spent_pusd, '
            "reserved_pusd = budget_counters.reserved_pusd + excluded.reserved_pusd",
            upserts,
        )
        self.many(
            'UPDATE budget_counters SET spent_pusd = spent_pusd + ?, reserved_pusd = reserved_pusd + ? WHERE "key" = ?',
            updates,
        )
        self.many(
            'INSERT INTO rate_buckets ("key", bucket, amount) VALUES (?, ?, ?) '
            'ON CONFLICT ("key", bucket) DO UPDATE SET amount = rate_buckets.amount + excluded.amount',
            [(key, at, amount) for (key, at), amount in batch.window_delta.items() if amount],
        )
        self.many(
            'DELETE FROM rate_buckets WHERE "key" = ? AND bucket <= ?',
            list(batch.old_buckets.items()),
        )
        self.many(
            "DELETE FROM concurrency_slots WHERE scope = ? AND rid = ?",
            batch.gone_slots,
        )
        self.many(
            'INSERT INTO concurrency_slots (scope, rid, "until") VALUES (?, ?, ?)',
            batch.new_slots,
        )
        cast = "CAST(? AS JSON)" if self.pg else "?"
        self.many(
            f'INSERT INTO reservations (rid, "until", cost_pusd, budget_keys, slot_scopes) VALUES (?, ?, ?, {cast}, {cast})',
            [
                (rid, until, cost, json.dumps(keys), json.dumps(scopes))
                for rid, until, cost, keys, scopes in batch.new_reservations
            ],
        )


def _load(db: _Db, need: Needs, held: dict[str, Held]) -> Batch:
    keys = dict.fromkeys(need.budget_keys)
    for claimed in held.values():
        keys.update(dict.fromkeys(claimed.budget_keys))
    return Batch(
        db.budgets(list(keys)),
        db.windows(need.rate_keys, need.oldest_bucket),
        db.busy(need.slot_scopes, need.now),
        held,
        need.now,
    )


def _scopes(ops: Sequence[Ask | Settlement]) -> list[str]:
    found: set[str] = set()
    for op in ops:
        found.update(line.scope for line in op.budgets)
        found.update(line.scope for line in op.slots)
        found.update(line.scope for line in (op.rates if isinstance(op, Ask) else op.token_rates))
    return sorted(found)


class SqlCounters:
    kind = "sql"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pg = store.dialect == "postgresql"
        self._path = None if self.pg else sqlite_path(store.url)
        self._loop_db: sqlite3.Connection | None = None  # SQLite, used on the event loop
        self._thread_db: sqlite3.Connection | None = None  # SQLite, used by a worker thread
        self._serial = threading.Lock()  # one transaction of this process at a time
        self._combined: Combiner[Ask | Settlement] = Combiner(self._batch, "gateway-sql-counters")
        self._errors: tuple[type[BaseException], ...] = (
            (StoreError, sqlite3.Error) if not self.pg else (StoreError, self._dbapi_error())
        )

    def _dbapi_error(self) -> type[BaseException]:
        dbapi = getattr(self.store.engine.dialect, "loaded_dbapi", None)
        return getattr(dbapi, "Error", StoreError)

    # -- the interface -----------------------------------------------------------------

    async def admit(self, ask: Ask) -> Outcome:
        result: Outcome = await self._combined.submit(ask)
        return result

    async def settle(self, settlement: Settlement) -> list[tuple[int, int]]:
        result: list[tuple[int, int]] = await self._combined.submit(settlement)
        return result

    async def read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        def work(db: _Db) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
            found = db.budgets([line.key for line in budgets])
            cur = bucket(now)
            counts = db.windows([rate.key for rate in rates], cur - BUCKETS)
            spent = [(v[0], v[1]) for v in (found.get(line.key, [0, 0]) for line in budgets)]
            windows = [
                [counts.get((rate.key, b), 0) for b in range(cur - BUCKETS + 1, cur + 1)]
                for rate in rates
            ]
            return spent, [(sum(w), reset_s(now, w)) for w in windows]

        return await asyncio.to_thread(self._transaction, work)

    async def sweep(self, now: float) -> int:
        def work(db: _Db) -> int:
            held = db.claim_expired(now)
            if not held:
                return 0
            keys = sorted({key for claimed in held.values() for key in claimed.budget_keys})
            rids = list(held)
            batch = Batch(db.budgets(keys), {}, {}, held, now)
            for rid in rids:
                batch.release(rid)
            db.write(batch)
            return len(rids)

        return await asyncio.to_thread(self._transaction, work)

    async def renew(self, rids: Sequence[str], until: float) -> int:
        def work(db: _Db) -> int:
            marks = _marks(len(rids))
            db.run(
                f'UPDATE concurrency_slots SET "until" = ? WHERE rid IN ({marks})', (until, *rids)
            )
            db.run(f'UPDATE reservations SET "until" = ? WHERE rid IN ({marks})', (until, *rids))
            return int(db.cursor.rowcount)

        if not rids:
            return 0
        result: int = await asyncio.to_thread(self._transaction, work)
        return result

    async def ping(self) -> None:
        if self.pg:  # a SQLite file on this host has nothing to lose touch with
            await asyncio.to_thread(self._transaction, lambda db: db.rows("SELECT 1", ()))

    async def close(self) -> None:
        await self._combined.wait()
        with self._serial:
            for connection in (self._loop_db, self._thread_db):
                if connection is not None:
                    connection.close()
            self._loop_db = self._thread_db = None

    async def _batch(self, ops: list[Ask | Settlement]) -> list[Any]:
        def apply(db: _Db) -> list[Any]:
            need = needs(ops)
            batch = _load(db, need, db.claim(need.rids))
            results = batch.run(ops)
            db.write(batch)
            return results

        if self.pg:
            return await asyncio.to_thread(self._transaction, apply, ops)
        deadline = time.monotonic() + RETRY_S
        pause = 0.0005
        while True:
            # Never block the loop: not on this process's worker thread, not on SQLite.
            if self._serial.acquire(blocking=False):
                try:
                    results: list[Any] = self._sqlite(apply, wait=False)
                    return results
                except _Busy:
                    pass
                finally:
                    self._serial.release()
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.008)
        return await asyncio.to_thread(self._transaction, apply, ops)

    # -- transactions ------------------------------------------------------------------

    def _transaction(
        self, work: Callable[[_Db], Any], lock_ops: Sequence[Ask | Settlement] = ()
    ) -> Any:
        """`work(db)` in one write transaction, from a worker thread."""
        with self._serial:
            if not self.pg:
                return self._sqlite(work, wait=True)
            try:
                with self.store.begin() as connection:
                    raw: Any = connection.connection.dbapi_connection
                    db = _Db(raw.cursor(), True)
                    for scope in _scopes(lock_ops):
                        db.run("SELECT pg_advisory_xact_lock(hashtextextended(?, 7))", (scope,))
                    return work(db)
            except self._errors as exc:
                raise CountersUnavailable(f"database {self.store.describe()}: {exc}") from None

    def _sqlite(self, work: Callable[[_Db], Any], *, wait: bool) -> Any:
        connection = self._connection(wait)
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait and _locked(exc):
                raise _Busy() from None
            raise CountersUnavailable(f"database {self.store.describe()}: {exc}") from None
        try:
            db = _Db(connection.cursor(), False)
            result = work(db)
            connection.execute("COMMIT")
            return result
        except BaseException as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise CountersUnavailable(f"database {self.store.describe()}: {exc}") from None
            raise

    def _connection(self, wait: bool) -> sqlite3.Connection:
        current = self._thread_db if wait else self._loop_db
        if current is not None:
            return current
        try:
            connection = sqlite3.connect(
                self._path or "", isolation_level=None, check_same_thread=False, timeout=0
            )
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS if wait else 0}")
            connection.execute("PRAGMA synchronous=NORMAL")
            if not wait:
                # No checkpoint on the event loop (it may wait on the disk): the store's
                # other connections (the ledger writer's) checkpoint the shared WAL.
                connection.execute("PRAGMA wal_autocheckpoint=0")
        except sqlite3.Error as exc:
            raise CountersUnavailable(f"database {self.store.describe()}: {exc}") from None
        if wait:
            self._thread_db = connection
        else:
            self._loop_db = connection
        return connection


class _Busy(Exception):
    """SQLite: another process holds the write lock right now."""


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text
