"""Rate limits across two replicas sharing Valkey (and one SQLite file), through real
sockets and the official SDK: requests and tokens per window within the documented
bound, OpenAI's x-ratelimit-* headers counting down, a retry-after that a retry can
trust, concurrency slots, the unpriced-model refusal, and GET /v1/key.

The replicas run with GATEWAY_RATE_WINDOW_S=6 (a 6 s "minute", 1 s buckets) so that
waiting out a window stays within a test's time; the algorithm is the same."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
import redis

from tests.e2e.budget_support import (
    MASTER,
    MODEL,
    Fleet,
    make_key,
    sdk,
    start,
    upstream,
    wait_for_key,
)
from tests.e2e.budget_upstream import prompt_tokens
from tests.e2e.keys_support import cli_json
from tests.servers import ValkeyHandle

WINDOW = 6.0


@pytest.fixture(scope="module")
def replicas(
    valkey: ValkeyHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, list[str]]]:
    tmp = tmp_path_factory.mktemp("rates")
    database = f"sqlite:///{tmp / 'gateway.db'}"
    redis.Redis.from_url(valkey.url).flushdb()
    with upstream() as _fake:
        make_key(
            database, f"boot-{uuid.uuid4().hex[:6]}"
        )  # the database exists before the replicas start
        fleet = Fleet(
            [
                start(database, tmp, redis=valkey.url, window_s=WINDOW, name=f"r{i}")
                for i in range(2)
            ]
        )
        try:
            yield database, [g.url for g in fleet.gateways]
        finally:
            fleet.stop()


def _key(database: str, urls: list[str], *flags: str) -> dict[str, str]:
    key = make_key(database, f"rate-{uuid.uuid4().hex[:6]}", *flags)
    wait_for_key(urls, key["key"])
    return key


def _post(url: str, secret: str, content: str = "hi", **extra: object) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=body,
        timeout=15,
        headers={"authorization": f"Bearer {secret}"},
    )


def _fresh_window() -> None:
    """Start at the beginning of a bucket, so a burst lands in one."""
    bucket = WINDOW / 6
    time.sleep(bucket - (time.time() % bucket) + 0.02)


def test_requests_per_window_across_replicas_count_down_and_retry_after_holds(
    replicas: tuple[str, list[str]],
) -> None:
    database, urls = replicas
    key = _key(database, urls, "--rpm", "5")
    _fresh_window()
    remaining = []
    for i in range(5):
        answer = _post(urls[i % 2], key["key"])
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-ratelimit-limit-requests"] == "5"
        remaining.append(int(answer.headers["x-ratelimit-remaining-requests"]))
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
    assert remaining == [4, 3, 2, 1, 0]  # one shared count, whichever replica answered
    refused = _post(urls[1], key["key"])
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    wait = int(refused.headers["retry-after-ms"]) / 1000
    assert 0 < wait <= WINDOW * 7 / 6 and int(refused.headers["retry-after"]) >= wait
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert _post(urls[0], key["key"]).status_code == 429  # the other replica agrees
    time.sleep(wait)
    assert _post(urls[0], key["key"]).status_code == 200  # the retry after it succeeds


def test_the_official_sdk_waits_out_retry_after_by_itself(replicas: tuple[str, list[str]]) -> None:
    database, urls = replicas
    key = _key(database, urls, "--rpm", "2")
    client = openai.OpenAI(base_url=f"{urls[0]}/v1", api_key=key["key"], max_retries=3)
    started = time.monotonic()
    for _ in range(4):  # two over the limit: the SDK sleeps retry-after and succeeds
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
    assert time.monotonic() - started >= WINDOW * 0.5


def test_tokens_per_window_by_estimate_then_by_usage(replicas: tuple[str, list[str]]) -> None:
    database, urls = replicas
    key = _key(database, urls, "--tpm", "400")
    messages = [{"role": "user", "content": "count these tokens please"}]
    counted = prompt_tokens(messages) + 100  # admitted by estimate: input + max_tokens
    _fresh_window()
    first = _post(urls[0], key["key"], "count these tokens please", max_tokens=100)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "400"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 400 - counted
    # Settled to the actual usage (input + 30 answered), the window has room again.
    time.sleep(0.3)
    second = _post(urls[1], key["key"], "count these tokens please", max_tokens=100)
    actual = prompt_tokens(messages) + 30
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 400 - actual - counted
    used = 2 * actual
    admitted = 2
    while True:
        answer = _post(urls[admitted % 2], key["key"], "count these tokens please", max_tokens=100)
        if answer.status_code != 200:
            break
        admitted += 1
        used += actual
        time.sleep(0.2)
    assert answer.status_code == 429 and answer.json()["error"]["type"] == "tokens"
    # Within the bound: what was admitted fits, and the refused call would not have.
    assert used <= 400 and used + counted > 400
    too_big = _post(urls[0], key["key"], "x", max_tokens=400)
    assert too_big.status_code == 429 and too_big.headers.get("x-should-retry") == "false"
    assert "Request too large" in too_big.json()["error"]["message"]


def test_concurrency_slots_are_shared_and_given_back(replicas: tuple[str, list[str]]) -> None:
    database, urls = replicas
    key = _key(database, urls, "--max-parallel", "2")

    async def run() -> list[int]:
        clients = [sdk(url, key["key"]) for url in urls]

        async def slow(i: int) -> int:
            try:
                async with clients[i % 2].chat.completions.with_streaming_response.create(
                    model=MODEL, messages=[{"role": "user", "content": "slow"}], stream=True
                ) as response:
                    async for _ in response.iter_lines():
                        pass
                    return response.status_code
            except openai.APIStatusError as exc:
                assert exc.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
                return exc.status_code

        statuses = await asyncio.gather(*(slow(i) for i in range(3)))
        for client in clients:
            await client.close()
        return list(statuses)

    assert sorted(asyncio.run(run())) == [200, 200, 429]
    assert _post(urls[0], key["key"]).status_code == 200  # both slots were given back


def test_unpriced_models_need_the_budget_switch_and_v1_key_reads_the_counters(
    replicas: tuple[str, list[str]],
) -> None:
    database, urls = replicas
    strict = _key(database, urls, "--budget", "1/daily", "--rpm", "100")
    refused = _post(urls[0], strict["key"], model="budget:unpriced")
    assert refused.status_code == 429 and refused.headers["x-should-retry"] == "false"
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota" and "no price" in error["message"]
    assert "allow-unpriced" in error["message"]
    lenient = _key(database, urls, "--budget", "1/daily/allow-unpriced")
    assert _post(urls[0], lenient["key"], model="budget:unpriced").status_code == 200
    assert _post(urls[0], strict["key"]).status_code == 200
    deadline = time.monotonic() + 5
    while True:  # the ledger is written in batches (every 0.5 s)
        own = httpx.get(
            f"{urls[1]}/v1/key", headers={"authorization": f"Bearer {strict['key']}"}, timeout=5
        ).json()
        if own["spend_usd"]["daily"] != "0" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert own["limits"]["budgets"] == [
        {"amount_usd": "1", "period": "daily", "allow_unpriced": False}
    ]
    [budget] = own["budgets"]
    assert budget["period"] == "daily" and budget["reserved_usd"] == "0"
    assert float(budget["spent_usd"]) > 0 and budget["resets_at"].endswith("T00:00:00Z")
    assert own["spend_usd"]["daily"] == budget["spent_usd"]  # the ledger and the counters agree
    [rate] = own["rate_limits"]
    assert (
        rate["kind"] == "requests" and rate["limit_per_minute"] == 100 and rate["remaining"] == 99
    )  # the refused call never reached the counters


def test_a_team_budget_binds_all_its_keys_and_the_admin_api_sets_limits(
    replicas: tuple[str, list[str]],
) -> None:
    database, urls = replicas
    team = f"team-{uuid.uuid4().hex[:6]}"
    made = cli_json(database, "teams", "create", team, "--budget", "0.002/daily", "--rpm", "1000")
    assert made["limits"]["budgets"] == [
        {"amount_usd": "0.002", "period": "daily", "allow_unpriced": False}
    ]
    first = _key(database, urls, "--team", team)
    answer = httpx.post(
        f"{urls[0]}/admin/keys",
        timeout=10,
        headers={"authorization": f"Bearer {MASTER}"},
        json={
            "name": f"api-{uuid.uuid4().hex[:6]}",
            "team": team,
            "budgets": [{"amount_usd": "5", "period": "monthly"}],
            "max_parallel": 8,
        },
    )
    assert answer.status_code == 201, answer.text
    second = answer.json()
    assert second["limits"] == {
        "budgets": [{"amount_usd": "5", "period": "monthly", "allow_unpriced": False}],
        "rpm": None,
        "tpm": None,
        "max_parallel": 8,
    }
    wait_for_key(urls, second["key"])
    bad = httpx.patch(
        f"{urls[0]}/admin/keys/{second['id']}",
        timeout=10,
        headers={"authorization": f"Bearer {MASTER}"},
        json={"budgets": ["5/hourly"]},
    )
    assert bad.status_code == 400 and "period" in bad.json()["error"]["message"]
    statuses = []
    for i in range(40):  # each call reserves up to ~0.00024 USD of the team's 0.002
        response = _post(urls[i % 2], (first, second)[i % 2]["key"], max_tokens=30)
        statuses.append(response.status_code)
        if response.status_code == 429:
            error = response.json()["error"]
            assert (
                error["code"] == "insufficient_quota" and f"the team '{team}'" in error["message"]
            )
            assert "resets at" in error["message"]
            break
    assert statuses[-1] == 429 and statuses.count(200) >= 8
    assert set(statuses[:-1]) == {200}
