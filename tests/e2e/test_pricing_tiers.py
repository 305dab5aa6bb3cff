"""Service tiers and long-context tiers billed end to end, through real sockets.

The fake OpenAI is scripted to answer with a `service_tier` and a usage; the gateway must
bill the tier the answer names, at the long-context price when the input is above the
threshold, in `x-gateway-cost-usd` and in /metrics, against costs worked out by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import REGISTRY, start_gateway
from tests.e2e.scrape import scrape, total
from tests.fakes.openai import FakeOpenAI, Scripted

MODELS = """
models:
  openai:tiered:
    provider: openai
    model: gpt-5.4
    endpoint: chat_completions
    pricing:
      input_per_mm: 2.50
      output_per_mm: 15.00
      cached_input_per_mm: 0.25
      tiers:
        - {above_input_tokens: 272000, input_per_mm: 5.00, output_per_mm: 22.50, cached_input_per_mm: 0.50}
      service_tiers:
        flex:
          input_per_mm: 1.25
          output_per_mm: 7.50
          cached_input_per_mm: 0.125
          tiers:
            - {above_input_tokens: 272000, input_per_mm: 2.50, output_per_mm: 11.25, cached_input_per_mm: 0.25}
        priority: {input_per_mm: 5.00, output_per_mm: 30.00, cached_input_per_mm: 0.50}
  openai:tiered-responses:
    provider: openai
    model: gpt-5.4
    endpoint: responses
    pricing:
      input_per_token: 0.0000025
      output_per_token: 0.000015
      cached_input_per_token: 0.00000025
      cache_write_per_token: 0.000003125
      service_tiers:
        flex: {input_per_token: 0.00000125, output_per_token: 0.0000075, cached_input_per_token: 0.000000125}
"""


@pytest.fixture(scope="module")
def tiered_url(fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("tiered")
    (folder / "models").mkdir()
    (folder / "providers.yaml").write_text((REGISTRY / "providers.yaml").read_text())
    (folder / "models" / "tiered.yaml").write_text(MODELS)
    yield from start_gateway(registry=str(folder))


def _chat_answer(tier: str, prompt: int, cached: int, completion: int) -> Scripted:
    body = {
        "id": "chatcmpl-t",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-5.4",
        "service_tier": tier,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hi."},
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }
    return Scripted(raw=orjson.dumps(body))


CHAT_CASES = [
    # standard, short: 900 x 2.5 + 100 x 0.25 + 50 x 15 = 2250 + 25 + 750 = 3025 per 1M
    ("default", (1_000, 100, 50), "0.003025"),
    # priority, short: 900 x 5 + 100 x 0.5 + 50 x 30 = 4500 + 50 + 1500 = 6050 per 1M
    ("priority", (1_000, 100, 50), "0.00605"),
    # flex, short: 900 x 1.25 + 100 x 0.125 + 50 x 7.5 = 1125 + 12.5 + 375 = 1512.5 per 1M
    ("flex", (1_000, 100, 50), "0.0015125"),
    # standard, long: 200000 x 5 + 100000 x 0.5 + 2000 x 22.5 = 1000000 + 50000 + 45000 = 1095000 per 1M
    ("default", (300_000, 100_000, 2_000), "1.095"),
    # flex, long: 200000 x 2.5 + 100000 x 0.25 + 2000 x 11.25 = 500000 + 25000 + 22500 = 547500 per 1M
    ("flex", (300_000, 100_000, 2_000), "0.5475"),
    # priority, long (no long prices of its own: standard long): 1095000 per 1M
    ("priority", (300_000, 100_000, 2_000), "1.095"),
]


def test_chat_answers_are_billed_at_the_tier_they_name(
    fake_openai: FakeOpenAI, tiered_url: str
) -> None:
    before = total(scrape(tiered_url), "gateway_cost_usd_total", model="openai:tiered")
    expected_sum = Decimal(0)
    for tier, (prompt, cached, completion), expected in CHAT_CASES:
        fake_openai.script.append(_chat_answer(tier, prompt, cached, completion))
        response = httpx.post(
            f"{tiered_url}/v1/chat/completions",
            timeout=10,
            json={"model": "openai:tiered", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert response.status_code == 200, response.text
        assert Decimal(response.headers["x-gateway-cost-usd"]) == Decimal(expected), (tier, prompt)
        expected_sum += Decimal(expected)
    after = total(scrape(tiered_url), "gateway_cost_usd_total", model="openai:tiered")
    assert after - before == pytest.approx(float(expected_sum), abs=1e-9)


def _responses_answer(tier: str, usage: dict[str, Any]) -> Scripted:
    body = {
        "id": "resp_t",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-5.4",
        "service_tier": tier,
        "output": [
            {
                "type": "message",
                "id": "m1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
            }
        ],
        "usage": usage,
    }
    return Scripted(raw=orjson.dumps(body))


def test_responses_flex_and_cache_writes_priced_per_token(
    fake_openai: FakeOpenAI, tiered_url: str
) -> None:
    usage = {
        "input_tokens": 10_000,
        "output_tokens": 500,
        "total_tokens": 10_500,
        "input_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 3_000},
        "output_tokens_details": {"reasoning_tokens": 100},
    }
    fake_openai.script.append(_responses_answer("default", usage))
    response = httpx.post(
        f"{tiered_url}/v1/responses",
        timeout=10,
        json={"model": "openai:tiered-responses", "input": "hi"},
    )
    assert response.status_code == 200, response.text
    # 5000 x 2.5 + 2000 x 0.25 + 3000 x 3.125 + 500 x 15 = 12500 + 500 + 9375 + 7500 = 29875 per 1M
    assert Decimal(response.headers["x-gateway-cost-usd"]) == Decimal("0.029875")

    fake_openai.script.append(_responses_answer("flex", usage))
    response = httpx.post(
        f"{tiered_url}/v1/responses",
        timeout=10,
        json={"model": "openai:tiered-responses", "input": "hi", "service_tier": "flex"},
    )
    assert response.status_code == 200, response.text
    # flex gives no cache-write price: the standard 3.125 stands.
    # 5000 x 1.25 + 2000 x 0.125 + 3000 x 3.125 + 500 x 7.5 = 6250 + 250 + 9375 + 3750 = 19625 per 1M
    assert Decimal(response.headers["x-gateway-cost-usd"]) == Decimal("0.019625")
