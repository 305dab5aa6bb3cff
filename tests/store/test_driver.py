"""The store's driver-cursor paths (gateway.store.core.Store.driver): the ledger's batch
insert reads back as written at every batch size, NULLs included, on SQLite (multi-row
INSERTs) and PostgreSQL (executemany); a batch that fails writes nothing and leaves the
store usable; the key cache's poll of the change counter takes no write lock."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.store import LedgerRow, Store, StoreError
from gateway.store.ledger import FIELDS, _sqlite_chunks, insert_rows
from gateway.store.schema import ledger

T0 = datetime(2026, 12, 1, 17, 0, 0, 123456)


def _rows(count: int, start: int = 0) -> list[LedgerRow]:
    """Rows that differ in every column, every nullable one NULL in some of them."""
    return [
        LedgerRow(
            time=T0 + timedelta(microseconds=7 * i),
            request_id=f"req-{i}",
            key_id=None if i % 5 == 0 else f"key_{i % 3}",  # the master key: no key
            team_id=None if i % 2 else f"team_{i % 4}",
            route="/v1/chat/completions",
            model=None if i % 11 == 0 else "openai:gpt-4o-mini",
            answered_by=None if i % 11 == 0 else "openai:gpt-4o-mini",
            provider=None if i % 11 == 0 else "openai",
            status=200 if i % 7 else 502,
            input_tokens=i,
            cached_input_tokens=i // 2,
            output_tokens=3 * i,
            reasoning_tokens=i // 3,
            cost_pusd=None if i % 6 == 0 else 1_000_003 * i,
            duration_ms=i + 0.25,
            ttft_ms=None if i % 4 else i / 8,
            streamed=bool(i % 2),
            disconnected=i % 9 == 0,
            estimated=i % 13 == 0,
            error_reason=None if i % 7 else "upstream_error",
        )
        for i in range(start, start + count)
    ]


def _read(store: Store) -> list[LedgerRow]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(ledger).order_by(ledger.c.id)).mappings().all()
    return [LedgerRow(**{name: row[name] for name in FIELDS}) for row in rows]


def test_sqlite_chunks_cover_any_count_in_six_shapes() -> None:
    for count in range(0, 300):
        sizes = _sqlite_chunks(count)
        assert sum(sizes) == count and set(sizes) <= {32, 16, 8, 4, 2, 1}
    assert _sqlite_chunks(95) == [32, 32, 16, 8, 4, 2, 1]


def test_every_batch_size_reads_back_as_written(store: Store) -> None:
    written: list[LedgerRow] = []
    for count in (1, 2, 31, 32, 33, 63, 64, 95):
        batch = _rows(count, len(written))
        insert_rows(store, batch)
        written += batch
    assert _read(store) == written


def test_a_failing_batch_writes_nothing_and_the_store_goes_on(store: Store) -> None:
    batch = _rows(70)
    fields = {name: getattr(batch[45], name) for name in FIELDS}
    batch[45] = LedgerRow(**{**fields, "route": None})
    with pytest.raises(StoreError):
        insert_rows(store, batch)  # NOT NULL fails in the second chunk: the first is undone
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ledger)).scalar_one() == 0
    good = _rows(40)
    insert_rows(store, good)  # the connection went back to the pool in a usable state
    assert _read(store) == good


def test_the_change_counter_is_read_while_another_process_writes(tmp_path: Path) -> None:
    """The poll (every 0.5 s, in every worker) must not queue behind a writer for the
    write lock: another connection holds it while the counter is read."""
    path = tmp_path / "gateway.db"
    store = Store.open(f"sqlite:///{path}")
    try:
        writer = sqlite3.connect(path, isolation_level=None, timeout=0)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE changes SET version = version + 1 WHERE id = 1")
        started = time.monotonic()
        assert store.version() == 0  # the committed value, at once
        assert time.monotonic() - started < 1  # the busy timeout is 10 s
        writer.execute("COMMIT")
        assert store.version() == 1
        writer.close()
    finally:
        store.close()
