"""The race: one key with a budget of a few cents, a few hundred concurrent calls through
several gateway processes (streamed and not, some leaving mid-stream, some failing
upstream), driven by the official openai SDK over real sockets.

Afterwards: the ledger's spend is within the budget; ledger = counters = /metrics summed
= the cost computed by hand, to the pico-USD (disconnected streams at what the ledger
recorded for them, checked against their worst case); every refusal is a 429
insufficient_quota whose numbers show the budget could not pay the call's least useful
answer. Two deployments: three processes sharing PostgreSQL and Valkey, and one host
with `--workers 2` sharing SQLite."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from gateway.counters.tables import budget_counters
from gateway.store import Store
from gateway.store.schema import PICO, ledger
from tests.e2e.budget_support import (
    MODEL,
    Fleet,
    make_key,
    metric_cost,
    refusal_numbers,
    sdk,
    start,
    upstream,
    wait_for_key,
)
from tests.e2e.budget_upstream import (
    ANSWER_TOKENS,
    INPUT_PRICE,
    OUTPUT_PRICE,
    HonestUpstream,
    cost,
    prompt_tokens,
)
from tests.e2e.scrape import scrape, total
from tests.servers import PostgresServer, ValkeyHandle

BUDGET = Decimal("0.03")
CALLS = 240
CONCURRENCY = 60
MAX_OUT = 400  # budget:chat's maximum output


@dataclass
class Call:
    rid: str
    kind: str  # plain | stream | leave | fail
    messages: list[ChatCompletionMessageParam]
    max_tokens: int | None
    status: int = 0
    code: str | None = None
    message: str = ""
    lowered: int | None = None


@pytest.fixture(scope="module")
def honest() -> Iterator[HonestUpstream]:
    with upstream() as fake:
        yield fake


def _plan(n: int) -> list[Call]:
    rng = random.Random(20261201)
    calls = []
    for i in range(n):
        kind = ("plain", "stream", "plain", "stream", "leave", "fail")[i % 6]
        words = " ".join(
            rng.choice(("alpha", "beta", "gamma", "delta")) for _ in range(rng.randint(1, 30))
        )
        text = f"call {i}: {words}" + (
            " please fail" if kind == "fail" else " slow" if kind == "leave" else ""
        )
        max_tokens = None if i % 7 == 0 else rng.randint(16, 60)
        calls.append(Call(uuid.uuid4().hex, kind, [{"role": "user", "content": text}], max_tokens))
    return calls


async def _one(client: openai.AsyncOpenAI, call: Call) -> None:
    extra: dict[str, Any] = {"extra_headers": {"x-request-id": call.rid}}
    if call.max_tokens is not None:
        extra["max_tokens"] = call.max_tokens
    try:
        if call.kind in ("plain", "fail"):
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL, messages=call.messages, **extra
            )
            call.status, lowered = (
                raw.status_code,
                raw.headers.get("x-gateway-max-output-tokens-lowered"),
            )
            raw.parse()
        else:
            async with client.chat.completions.with_streaming_response.create(
                model=MODEL, messages=call.messages, stream=True, **extra
            ) as response:
                call.status, lowered = (
                    response.status_code,
                    response.headers.get("x-gateway-max-output-tokens-lowered"),
                )
                seen = 0
                async for _line in response.iter_lines():
                    seen += 1
                    if call.kind == "leave" and seen >= 4:
                        break  # the client leaves mid-stream: the response is closed here
        call.lowered = int(lowered) if lowered else None
    except openai.APIStatusError as exc:
        call.status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        call.code, call.message = body.get("code"), str(body.get("message"))
        assert (
            exc.response.headers.get("x-should-retry")
            == ("false" if exc.status_code == 429 else None)
            or exc.status_code != 429
        )


async def _race(urls: list[str], secret: str, calls: list[Call]) -> None:
    clients = [sdk(url, secret) for url in urls]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(i: int, call: Call) -> None:
        async with gate:
            await _one(clients[i % len(clients)], call)

    await asyncio.gather(*(run(i, call) for i, call in enumerate(calls)))
    for client in clients:
        await client.close()


def _ledger(database: str, key_id: str) -> dict[str, tuple[int, int, bool]]:
    store = Store.open(database)
    try:
        with store.begin() as connection:
            rows = connection.execute(
                select(
                    ledger.c.request_id, ledger.c.status, ledger.c.cost_pusd, ledger.c.disconnected
                ).where(ledger.c.key_id == key_id)
            ).all()
    finally:
        store.close()
    return {
        row.request_id: (row.status, int(row.cost_pusd or 0), bool(row.disconnected))
        for row in rows
    }


def _check(
    calls: list[Call],
    rows: dict[str, tuple[int, int, bool]],
    counters: tuple[int, int],
    metrics: Decimal,
    budget: Decimal,
) -> int:
    assert set(rows) == {call.rid for call in calls}, "every call has its one ledger row"
    spent_ledger = sum(c for _s, c, _d in rows.values())
    assert spent_ledger <= budget * PICO, (spent_ledger, budget)
    hand = Decimal(0)
    refused = lowered = left_mid_stream = 0
    for call in calls:
        status, recorded, disconnected = rows[call.rid]
        if call.status == 429:
            refused += 1
            assert call.code == "insufficient_quota", call.message
            left, least = refusal_numbers(call.message)
            assert left < least, call.message  # refused only when not even a short answer fits
            assert recorded == 0
        elif call.kind == "fail":
            assert call.status == 500 and recorded == 0
        elif call.kind == "leave" and disconnected:
            left_mid_stream += 1
            cap = call.lowered if call.lowered is not None else call.max_tokens
            worst = (
                prompt_tokens(call.messages) * INPUT_PRICE + (cap or MAX_OUT) * OUTPUT_PRICE
            ) / 1_000_000
            assert (
                recorded <= worst * PICO
            )  # whatever the gateway billed the hang-up, within its reservation
            hand += Decimal(recorded) / PICO
        else:
            assert call.status == 200 and status == 200, (call, status)
            effective = call.lowered if call.lowered is not None else call.max_tokens
            if call.lowered is not None:
                lowered += 1
                assert call.lowered < (call.max_tokens or MAX_OUT)
            hand += cost(call.messages, effective)
            assert recorded == int(cost(call.messages, effective) * PICO)
    spent_counters, reserved = counters
    assert reserved == 0, "every reservation settled"
    assert spent_counters == spent_ledger
    assert abs(metrics - Decimal(spent_ledger) / PICO) < Decimal("1e-9")
    assert abs(hand - Decimal(spent_ledger) / PICO) < Decimal("1e-9")
    assert refused > 0, "the budget never bound: the race proved nothing"
    assert refused < len(calls) // 2
    print(
        f"race: {len(calls)} calls, {refused} refused, {lowered} lowered, {left_mid_stream} left mid-stream, "
        f"spent {Decimal(spent_ledger) / PICO} of {budget}"
    )
    return refused


def _admission_metrics(
    urls: list[str], name: str, refused: int, budget: Decimal, spent: int
) -> None:
    """Refusals by reason, reservations outstanding, the budget's spent and remaining gauges."""
    pages = [scrape(url) for url in urls]
    assert (
        sum(total(p, "gateway_admission_refusals_total", reason="budget") for p in pages) == refused
    )
    assert sum(total(p, "gateway_reservations_outstanding") for p in pages) == 0
    deadline = time.monotonic() + 5
    while True:  # every process's gauges reach the counters' values (read afresh each second)
        pages = [scrape(url) for url in urls]
        seen = [total(p, "gateway_budget_spent_usd", key=name, period="total") for p in pages]
        remaining = [
            total(p, "gateway_budget_remaining_usd", key=name, period="total") for p in pages
        ]
        exact = all(
            abs(Decimal(repr(s)) - Decimal(spent) / PICO) < Decimal("1e-9") for s in seen
        ) and all(
            abs(Decimal(repr(r)) - (budget - Decimal(spent) / PICO)) < Decimal("1e-9")
            for r in remaining
        )
        if exact or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for s in seen:
        assert abs(Decimal(repr(s)) - Decimal(spent) / PICO) < Decimal("1e-9")
    for r in remaining:
        assert abs(Decimal(repr(r)) - (budget - Decimal(spent) / PICO)) < Decimal("1e-9")


def _settled(
    read: Callable[[], tuple[int, int]], rows: Callable[[], dict[str, Any]], n: int
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if read()[1] == 0 and len(rows()) >= n:
            return
        time.sleep(0.2)


def test_three_gateways_share_one_budget_through_valkey_and_postgres(
    honest: HonestUpstream, postgres: PostgresServer, valkey: ValkeyHandle, tmp_path: Path
) -> None:
    database = postgres.new_database()
    name = f"race-{uuid.uuid4().hex[:6]}"
    key = make_key(database, name, "--budget", f"{BUDGET}/total", "--budget", "5/daily")
    r = redis.Redis.from_url(valkey.url)
    r.flushdb()
    fleet = Fleet()
    try:
        fleet.gateways = [
            start(database, tmp_path, redis=valkey.url, name=f"g{i}") for i in range(3)
        ]
        urls = [g.url for g in fleet.gateways]
        wait_for_key(urls, key["key"])
        calls = _plan(CALLS)
        asyncio.run(_race(urls, key["key"], calls))

        def read() -> tuple[int, int]:
            spent, reserved = r.hmget(
                f"{{gw}}:b:k:{key['id']}:total:1970-01-01", "spent", "reserved"
            )
            return int(spent or 0), int(reserved or 0)

        _settled(read, lambda: _ledger(database, key["id"]), len(calls))
        refused = _check(
            calls, _ledger(database, key["id"]), read(), metric_cost(urls, name), BUDGET
        )
        _admission_metrics(urls, name, refused, BUDGET, read()[0])
        daily = r.hget(
            f"{{gw}}:b:k:{key['id']}:daily:{time.strftime('%Y-%m-%d', time.gmtime())}", "spent"
        )
        assert int(daily or 0) == read()[0]  # both budgets counted every call
    finally:
        fleet.stop()
        r.close()


def test_two_workers_share_one_budget_through_sqlite(
    honest: HonestUpstream, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    name = f"race-sqlite-{uuid.uuid4().hex[:6]}"
    key = make_key(database, name, "--budget", f"{BUDGET}/total")
    fleet = Fleet([start(database, tmp_path, workers=2)])
    try:
        url = fleet.gateways[0].url
        wait_for_key([url], key["key"])
        calls = _plan(CALLS)
        asyncio.run(_race([url], key["key"], calls))
        store = Store.open(database)

        def read() -> tuple[int, int]:
            with store.begin() as connection:
                row = connection.execute(
                    select(budget_counters).where(
                        budget_counters.c.key == f"k:{key['id']}:total:1970-01-01"
                    )
                ).first()
            return (int(row.spent_pusd), int(row.reserved_pusd)) if row else (0, 0)

        try:
            _settled(read, lambda: _ledger(database, key["id"]), len(calls))
            refused = _check(
                calls, _ledger(database, key["id"]), read(), metric_cost([url], name), BUDGET
            )
            _admission_metrics([url], name, refused, BUDGET, read()[0])
        finally:
            store.close()
    finally:
        fleet.stop()


__all__ = ["ANSWER_TOKENS"]
