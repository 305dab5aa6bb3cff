"""The ledger's batch insert on the driver's own cursor (gateway.store.ledger.insert_values):
every batch size reads back as written, NULLs included, on SQLite (multi-row INSERTs)
and PostgreSQL (executemany); a batch that fails writes nothing and leaves the store
usable."""

from __future__ import annotations

from datetime import datetime, timedelta

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
