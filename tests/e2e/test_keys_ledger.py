"""The ledger through real sockets: one row per finished call of a virtual key, equal to
the per-key Prometheus counters and to the cost worked out by hand to 1e-9 USD, for
streamed, unstreamed, disconnected and failed calls, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from gateway.store import Store
from gateway.store.schema import PICO, ledger
from tests.e2e.keys_support import cli, cli_json, database, gateway, unique, until
from tests.e2e.scrape import scrape, total
from tests.fakes.openai import FakeOpenAI, Scripted

MINI, RESPONSES_MINI, O4 = "openai:chat_gpt-4o-mini", "openai:gpt-4o-mini", "openai:chat_o4-mini"
# The fake's usage on every successful call: 1200 input (200 cached), 300 output (100 reasoning).
MINI_COST = (1000 * 0.15 + 200 * 0.075 + 300 * 0.60) / 1e6  # 0.15 / 0.075 / 0.60 per 1M: 345e-6
O4_COST = 1000 * 0.0000011 + 200 * 0.000000275 + 300 * 0.0000044  # priced per token: 2475e-6


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database(request, tmp_path)


@pytest.fixture
def gw(db: str, fake_openai: FakeOpenAI) -> Iterator[str]:
    yield from gateway(db)


def _rows(db: str, key_id: str) -> list[Any]:
    store = Store.open(db)
    try:
        with store.engine.connect() as connection:
            return list(
                connection.execute(
                    select(ledger).where(ledger.c.key_id == key_id).order_by(ledger.c.id)
                ).mappings()
            )
    finally:
        store.close()


def test_ledger_equals_metrics_equals_the_hand_computed_cost(
    db: str, gw: str, fake_openai: FakeOpenAI
) -> None:
    team = unique("billing")
    cli(db, "teams", "create", team)
    key = cli_json(db, "keys", "create", "--name", unique("meter"), "--team", team)
    sdk = openai.OpenAI(base_url=f"{gw}/v1", api_key=key["key"], max_retries=0)
    until(
        lambda: (
            httpx.get(f"{gw}/v1/models", headers={"api-key": key["key"]}, timeout=5).status_code
            == 200
        ),
        timeout=2.5,
    )
    hi: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]

    sdk.chat.completions.create(model=MINI, messages=hi)  # 200
    assert "".join(
        c.choices[0].delta.content or ""
        for c in sdk.chat.completions.create(model=MINI, messages=hi, stream=True)
        if c.choices
    )  # 200
    sdk.responses.create(model=RESPONSES_MINI, input="Hi")  # 200
    assert [e.type for e in sdk.responses.create(model=RESPONSES_MINI, input="Hi", stream=True)][
        -1
    ] == "response.completed"  # 200
    sdk.chat.completions.create(model=O4, messages=hi)  # 200
    fake_openai.script.append(
        Scripted(
            status=400,
            body={
                "error": {
                    "message": "bad",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        )
    )
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model=MINI, messages=hi)  # the upstream's 400
    fake_openai.script.append(Scripted(cut_stream_after=3))
    with pytest.raises(openai.APIError):
        list(
            sdk.chat.completions.create(model=MINI, messages=hi, stream=True)
        )  # upstream cut: an error frame
    # The client leaves after the first chunk of a slow stream.
    fake_openai.script.append(Scripted(chunk_delay_s=0.3))
    with httpx.stream(
        "POST",
        f"{gw}/v1/chat/completions",
        timeout=10,
        json={"model": MINI, "messages": hi, "stream": True},
        headers={"authorization": f"Bearer {key['key']}"},
    ) as response:
        next(response.iter_bytes())
    refused = httpx.post(
        f"{gw}/v1/chat/completions",
        json={"model": "no-such-model", "messages": hi},
        timeout=5,
        headers={"authorization": f"Bearer {key['key']}"},
    )
    assert refused.status_code == 404

    assert until(lambda: len(_rows(db, key["id"])) == 9, timeout=5) < 5
    time.sleep(0.6)  # nothing more comes
    rows = _rows(db, key["id"])
    assert len(rows) == 9
    statuses = sorted(row["status"] for row in rows)
    assert statuses == [200, 200, 200, 200, 200, 400, 404, 499, 502], statuses
    assert all(row["team_id"] == key["team_id"] for row in rows)
    assert [row["streamed"] for row in rows] == [
        False,
        True,
        False,
        True,
        False,
        False,
        True,
        True,
        False,
    ]
    assert [row["disconnected"] for row in rows] == [False] * 7 + [True, False]
    assert [row["answered_by"] for row in rows][:5] == [
        MINI,
        MINI,
        RESPONSES_MINI,
        RESPONSES_MINI,
        O4,
    ]

    # Calls cut short have only the usage the gateway saw (none, today, for these fakes):
    # their cost is worked out by hand from the tokens their rows carry.
    by_hand = Decimal(repr(MINI_COST)) * 4 + Decimal(repr(O4_COST))
    for row in rows[5:]:
        assert row["answered_by"] in (MINI, None)
        uncached = row["input_tokens"] - row["cached_input_tokens"]
        by_hand += (
            Decimal(uncached) * Decimal("0.15")
            + Decimal(row["cached_input_tokens"]) * Decimal("0.075")
            + Decimal(row["output_tokens"]) * Decimal("0.60")
        ) / 10**6
    ledger_usd = Decimal(sum(row["cost_pusd"] or 0 for row in rows)) / PICO
    assert abs(ledger_usd - by_hand) < Decimal("1e-9"), (ledger_usd, by_hand)
    for row in rows[:5]:
        assert (
            row["input_tokens"],
            row["cached_input_tokens"],
            row["output_tokens"],
            row["reasoning_tokens"],
        ) == (1200, 200, 300, 100)

    samples = scrape(gw)
    labels = {"key": key["name"], "team": team}
    assert abs(total(samples, "gateway_key_cost_usd_total", **labels) - float(ledger_usd)) < 1e-9
    for kind, column in (
        ("input", "input_tokens"),
        ("cached_input", "cached_input_tokens"),
        ("output", "output_tokens"),
        ("reasoning", "reasoning_tokens"),
    ):
        assert total(samples, "gateway_key_tokens_total", type=kind, **labels) == sum(
            r[column] for r in rows
        )
    for status in set(statuses):
        assert total(
            samples, "gateway_key_requests_total", status=str(status), **labels
        ) == statuses.count(status)

    # The spend report sums the same rows: CLI JSON, CSV, and the admin API.
    report = json.loads(cli(db, "spend", "--by", "key", "--by", "team", "--format", "json").stdout)
    mine = [row for row in report if row["key"] == key["name"]]
    assert len(mine) == 1 and mine[0]["team"] == team and mine[0]["requests"] == 9
    assert Decimal(mine[0]["cost_usd"]) == ledger_usd
    assert mine[0]["input_tokens"] == sum(r["input_tokens"] for r in rows)
    assert (
        f"{key['name']},{team},9,"
        in cli(db, "spend", "--by", "key", "--by", "team", "--format", "csv").stdout
    )
    api = httpx.get(
        f"{gw}/admin/spend",
        params={"by": "team,model"},
        timeout=5,
        headers={"authorization": "Bearer gw-master-key-for-keys-tests"},
    ).json()
    assert sum(Decimal(row["cost_usd"]) for row in api if row["team"] == team) == ledger_usd
    table = cli(
        db, "spend", "--by", "team", "--since", "2000-01-01", "--until", "2999-12-31"
    ).stdout
    assert team in table and str(ledger_usd.normalize()) in table
    assert "no calls" in cli(db, "spend", "--by", "team", "--until", "2000-01-01").stdout


def test_a_refused_call_is_recorded_against_the_model_it_asked_for(db: str, gw: str) -> None:
    # Refused after its model was found (the key's allow-list): the ledger row and the
    # request counter name that model, though no model was ever called.
    key = cli_json(db, "keys", "create", "--name", unique("narrow"), "--models", MINI)
    sdk = openai.OpenAI(base_url=f"{gw}/v1", api_key=key["key"], max_retries=0)
    until(
        lambda: (
            httpx.get(f"{gw}/v1/models", headers={"api-key": key["key"]}, timeout=5).status_code
            == 200
        ),
        timeout=2.5,
    )
    before = total(scrape(gw), "gateway_requests_total", model=O4, status="403")
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(model=O4, messages=[{"role": "user", "content": "Hi"}])
    until(lambda: any(row["status"] == 403 for row in _rows(db, key["id"])), timeout=5)
    (row,) = [row for row in _rows(db, key["id"]) if row["status"] == 403]
    assert (row["model"], row["answered_by"], row["provider"]) == (O4, None, "openai")
    assert row["error_reason"] == "model_not_allowed"
    after = total(scrape(gw), "gateway_requests_total", model=O4, provider="openai", status="403")
    assert after == before + 1
