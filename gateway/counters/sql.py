"""Counters in the store's SQL database: one host (SQLite shared by `--workers N`), or
replicas that share PostgreSQL and no Redis.

Each admission and each settlement is one transaction that reads the counters it needs,
runs gateway.counters.logic.decide and writes the result. Serialised by the database:
SQLite's write lock (every transaction is BEGIN IMMEDIATE, gateway.store.engine), and on
PostgreSQL a transaction-level advisory lock per scope (key or team), taken in sorted
order so two calls never wait on each other in a cycle. Calls of different keys and
teams run in parallel on PostgreSQL.

The store is synchronous; these run in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import QueuePool

from gateway.counters.base import CountersUnavailable
from gateway.counters.logic import bucket, decide, reset_s
from gateway.counters.plan import BUCKETS, LEASE_S, Ask, BudgetLine, Outcome, RateLine, Settlement
from gateway.counters.tables import budget_counters, rate_buckets, reservations, slots
from gateway.store import Store, StoreError
from gateway.store.engine import SQLITE_BUSY_MS


def _pooled_sqlite(store: Store) -> Store:
    """The store's SQLite file behind a small pool of kept-open connections, for the
    counters' two transactions per call. The store's own engine opens a connection per
    transaction (right for its background writes); here that costs ~20 ms a call: each
    commit on a fresh connection and each close (the last one checkpoints the WAL)
    wait on the disk. Same pragmas, same BEGIN IMMEDIATE."""
    engine = create_engine(
        store.engine.url,
        poolclass=QueuePool,
        pool_size=2,
        max_overflow=6,
        connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return Store(store.url, engine)


class SqlCounters:
    kind = "sql"

    def __init__(self, store: Store) -> None:
        if store.dialect == "sqlite":
            store = _pooled_sqlite(store)
        self.store = store
        self.pg = store.dialect == "postgresql"
        self._insert: Any = pg_insert if self.pg else sqlite_insert
        self._serial: threading.Lock | None = None if self.pg else threading.Lock()

    async def admit(self, ask: Ask) -> Outcome:
        return await asyncio.to_thread(self._guard, self._admit, ask)

    async def settle(self, settlement: Settlement) -> list[tuple[int, int]]:
        return await asyncio.to_thread(self._guard, self._settle, settlement)

    async def read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        return await asyncio.to_thread(self._guard, self._read, budgets, rates, now)

    async def sweep(self, now: float) -> int:
        return await asyncio.to_thread(self._guard, self._sweep, now)

    async def close(self) -> None:
        if not self.pg:
            self.store.close()  # our own pool (the keys runtime closes its store)

    def _guard(self, work: Any, *args: Any) -> Any:
        try:
            if self._serial is None:
                return work(*args)
            # SQLite: one writer at a time anyway. Threads of this process queue here, a
            # fast hand-over, instead of in SQLite's busy handler, which sleeps up to
            # 100 ms between tries; only other processes' transactions wait there.
            with self._serial:
                return work(*args)
        except StoreError as exc:
            raise CountersUnavailable(str(exc)) from None

    def _lock(self, connection: Connection, scopes: Sequence[str]) -> None:
        if self.pg:
            for scope in sorted(set(scopes)):
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:scope, 7))"),
                    {"scope": scope},
                )

    def _budgets(
        self, connection: Connection, lines: Sequence[BudgetLine]
    ) -> list[tuple[int, int]]:
        if not lines:
            return []
        found = {
            row.key: (int(row.spent_pusd), int(row.reserved_pusd))
            for row in connection.execute(
                select(budget_counters).where(
                    budget_counters.c.key.in_([line.key for line in lines])
                )
            )
        }
        return [found.get(line.key, (0, 0)) for line in lines]

    def _window(self, connection: Connection, key: str, now: float) -> list[int]:
        cur = bucket(now)
        found = dict(
            connection.execute(
                select(rate_buckets.c.bucket, rate_buckets.c.amount).where(
                    rate_buckets.c.key == key, rate_buckets.c.bucket > cur - BUCKETS
                )
            ).all()
        )
        return [int(found.get(b, 0)) for b in range(cur - BUCKETS + 1, cur + 1)]

    def _add_budget(
        self, connection: Connection, line: BudgetLine, spent: int, reserved: int
    ) -> None:
        stmt = self._insert(budget_counters).values(
            key=line.key,
            scope=line.scope,
            period=line.period,
            start=line.start,
            spent_pusd=spent,
            reserved_pusd=reserved,
        )
        connection.execute(
            stmt.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "spent_pusd": budget_counters.c.spent_pusd + stmt.excluded.spent_pusd,
                    "reserved_pusd": budget_counters.c.reserved_pusd + stmt.excluded.reserved_pusd,
                },
            )
        )

    def _add_tokens(self, connection: Connection, key: str, at: int, amount: int) -> None:
        stmt = self._insert(rate_buckets).values(key=key, bucket=at, amount=amount)
        connection.execute(
            stmt.on_conflict_do_update(
                index_elements=["key", "bucket"],
                set_={"amount": rate_buckets.c.amount + stmt.excluded.amount},
            )
        )

    def _admit(self, ask: Ask) -> Outcome:
        scopes = [
            *(b.scope for b in ask.budgets),
            *(r.scope for r in ask.rates),
            *(s.scope for s in ask.slots),
        ]
        with self.store.begin() as connection:
            self._lock(connection, scopes)
            budgets = self._budgets(connection, ask.budgets)
            windows = [self._window(connection, line.key, ask.now) for line in ask.rates]
            busy = [
                int(
                    connection.execute(
                        select(func.count())
                        .select_from(slots)
                        .where(slots.c.scope == slot.scope, slots.c.until > ask.now)
                    ).scalar_one()
                )
                for slot in ask.slots
            ]
            outcome = decide(ask, budgets, windows, busy)
            if not outcome.ok:
                return outcome
            for budget in ask.budgets:
                self._add_budget(connection, budget, 0, outcome.cost)
            cur = bucket(ask.now)
            for rate in ask.rates:
                self._add_tokens(
                    connection, rate.key, cur, 1 if rate.kind == "requests" else outcome.tokens
                )
                connection.execute(
                    delete(rate_buckets).where(
                        rate_buckets.c.key == rate.key, rate_buckets.c.bucket <= cur - BUCKETS
                    )
                )
            until = ask.now + LEASE_S
            for slot in ask.slots:
                connection.execute(
                    delete(slots).where(slots.c.scope == slot.scope, slots.c.until <= ask.now)
                )
                connection.execute(insert(slots).values(scope=slot.scope, rid=ask.rid, until=until))
            connection.execute(
                insert(reservations).values(
                    rid=ask.rid,
                    until=until,
                    cost_pusd=outcome.cost,
                    budget_keys=[b.key for b in ask.budgets],
                    slot_scopes=[s.scope for s in ask.slots],
                )
            )
            return outcome

    def _release(self, connection: Connection, rid: str) -> bool:
        row = connection.execute(select(reservations).where(reservations.c.rid == rid)).first()
        if row is None:
            return False
        for key in row.budget_keys:
            connection.execute(
                update(budget_counters)
                .where(budget_counters.c.key == key)
                .values(reserved_pusd=budget_counters.c.reserved_pusd - row.cost_pusd)
            )
        for scope in row.slot_scopes:
            connection.execute(delete(slots).where(slots.c.scope == scope, slots.c.rid == rid))
        connection.execute(delete(reservations).where(reservations.c.rid == rid))
        return True

    def _settle(self, s: Settlement) -> list[tuple[int, int]]:
        scopes = [
            *(b.scope for b in s.budgets),
            *(r.scope for r in s.token_rates),
            *(x.scope for x in s.slots),
        ]
        with self.store.begin() as connection:
            self._lock(connection, scopes)
            self._release(connection, s.rid)
            for budget in s.budgets:
                self._add_budget(connection, budget, s.actual_pusd, 0)
            delta = s.actual_tokens - s.tokens
            if delta:
                admitted, cur = bucket(s.admitted_at), bucket(s.now)
                for rate in s.token_rates:
                    if admitted > cur - BUCKETS:
                        connection.execute(
                            update(rate_buckets)
                            .where(
                                and_(
                                    rate_buckets.c.key == rate.key,
                                    rate_buckets.c.bucket == admitted,
                                )
                            )
                            .values(amount=rate_buckets.c.amount + delta)
                        )
                    elif delta > 0:
                        self._add_tokens(connection, rate.key, cur, delta)
            return self._budgets(connection, s.budgets)

    def _read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        with self.store.begin() as connection:
            spent = self._budgets(connection, budgets)
            windows = [self._window(connection, rate.key, now) for rate in rates]
        return spent, [(sum(w), reset_s(now, w)) for w in windows]

    def _sweep(self, now: float) -> int:
        with self.store.begin() as connection:
            expired = [
                row.rid
                for row in connection.execute(
                    select(reservations.c.rid).where(reservations.c.until <= now).limit(500)
                )
            ]
            for rid in expired:
                self._release(connection, rid)
            return len(expired)
