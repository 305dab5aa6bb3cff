"""Each counters backend on a real server: the in-process one, SQLite files, the suite's
PostgreSQL and Valkey (tests/servers.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.counters.memory import MemoryCounters
from gateway.counters.redis_backend import SEEDED, RedisCounters
from gateway.counters.sql import SqlCounters
from gateway.store import Store


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
async def counters(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    if request.param == "redis":
        valkey = request.getfixturevalue("valkey")
        backend = RedisCounters(valkey.url)
        await backend.client.flushdb()
        await backend.client.set(SEEDED, "test")
        yield backend
        await backend.close()
        return
    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres").new_database()
    )
    store = Store.open(url)
    yield SqlCounters(store)
    store.close()


def scope() -> str:
    return f"k:key_{uuid.uuid4().hex[:8]}"
