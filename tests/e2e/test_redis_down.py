"""Redis (Valkey) killed mid-run, under two gateways sharing it and one SQLite file: one
with GATEWAY_REDIS_FAILURE=closed (refuses limited keys with 503 while Redis is away),
one with =open (admits by its own counters, loudly). Streams in flight when Redis dies
finish and are billed; nothing leaves the ledger; once Redis is back (empty, as after a
restart without persistence) the counters are rebuilt from the ledger and equal it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from gateway.store import Store
from gateway.store.ledger import spend
from gateway.store.schema import PICO
from tests.e2e.budget_support import (
    MODEL,
    Fleet,
    make_key,
    metric_cost,
    sdk,
    start,
    upstream,
    wait_for_key,
)
from tests.e2e.budget_upstream import HonestUpstream
from tests.e2e.scrape import scrape, total
from tests.servers import ValkeyHandle


@pytest.fixture
def own_valkey() -> Iterator[ValkeyHandle]:
    handle = ValkeyHandle()  # this test's own: it gets killed
    handle.start()
    try:
        yield handle
    finally:
        if handle.server.is_running():
            handle.stop()
        handle.remove()


def _call(url: str, secret: str, i: int) -> httpx.Response:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"call {i}"}],
        "max_tokens": 40,
    }
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        timeout=15,
        headers={"authorization": f"Bearer {secret}", "connection": "close"},
    )


async def _slow_streams(url: str, secret: str, n: int, started: asyncio.Event) -> list[int]:
    client = sdk(url, secret)
    begun: list[int] = []

    async def one() -> int:
        async with client.chat.completions.with_streaming_response.create(
            model=MODEL,
            messages=[{"role": "user", "content": "slow please"}],
            stream=True,
            max_tokens=30,
        ) as response:
            begun.append(1)
            if len(begun) == n:
                started.set()  # every stream admitted and flowing
            async for _ in response.iter_lines():
                pass
            return response.status_code

    try:
        return list(await asyncio.gather(*(one() for _ in range(n))))
    finally:
        await client.close()


def test_redis_killed_mid_run(
    honest_upstream: HonestUpstream, own_valkey: ValkeyHandle, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    name = f"down-{uuid.uuid4().hex[:6]}"
    key = make_key(database, name, "--budget", "1/total", "--rpm", "10000")
    secret = key["key"]
    fleet = Fleet(
        [
            start(database, tmp_path, redis=own_valkey.url, failure="closed", name="closed"),
            start(database, tmp_path, redis=own_valkey.url, failure="open", name="open"),
        ]
    )
    closed, opened = (g.url for g in fleet.gateways)
    try:
        wait_for_key([closed, opened], secret)
        for i in range(6):
            assert _call(closed, secret, i).status_code == 200
            assert _call(opened, secret, i).status_code == 200

        async def kill_during_streams() -> list[int]:
            started = asyncio.Event()
            streams = asyncio.create_task(_slow_streams(closed, secret, 3, started))
            await started.wait()
            own_valkey.server.terminate()  # SIGKILL: no goodbye, no save
            return await streams

        assert asyncio.run(kill_during_streams()) == [200, 200, 200]  # admitted before: they finish
        for i in range(5):
            refused = _call(closed, secret, 100 + i)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "counters_unavailable"
            assert _call(opened, secret, 100 + i).status_code == 200
        loud = scrape(opened)
        assert total(loud, "gateway_counters_degraded") == 1
        assert total(loud, "gateway_counters_unshared_admissions_total") >= 5
        assert (
            total(scrape(closed), "gateway_admission_refusals_total", reason="counters_unavailable")
            >= 5
        )

        own_valkey.start()  # back, and empty
        deadline = time.monotonic() + 15
        while _call(closed, secret, 200).status_code != 200:
            assert time.monotonic() < deadline, "the closed gateway never used Redis again"
            time.sleep(0.2)
        for i in range(5):
            assert _call(closed, secret, 300 + i).status_code == 200
            assert _call(opened, secret, 300 + i).status_code == 200

        r = redis.Redis.from_url(own_valkey.url)
        store = Store.open(database)
        try:

            def counters() -> tuple[int, int]:
                spent, reserved = r.hmget(
                    f"{{gw}}:b:k:{key['id']}:total:1970-01-01", "spent", "reserved"
                )
                return int(spent or 0), int(reserved or 0)

            def ledger() -> tuple[int, int]:
                [row] = spend(store, (), key_id=key["id"])
                return row["requests"], int(Decimal(row["cost_usd"]) * PICO)

            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (counters()[1] or counters()[0] != ledger()[1]):
                time.sleep(0.2)
            requests, spent = ledger()
            assert (
                requests >= 6 * 2 + 3 + 5 * 2 + 5 * 2 + 1
            )  # every call has its row, refused ones too
            assert counters() == (spent, 0)
            assert abs(metric_cost([closed, opened], name) - Decimal(spent) / PICO) < Decimal(
                "1e-9"
            )
            assert total(scrape(opened), "gateway_counters_degraded") == 0
        finally:
            store.close()
            r.close()
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def honest_upstream() -> Iterator[HonestUpstream]:
    with upstream() as fake:
        yield fake
