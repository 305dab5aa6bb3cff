"""Estimates, the cost cap and capability enforcement, through real sockets.

For each client API and upstream kind: ask /v1/estimate/* first (nothing reaches the
fake upstream), then make the real call with the fake scripted to use exactly the
estimated input and the largest output; the call's cost must be the estimate's max.
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
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI, Scripted

MESSAGES = [
    {"role": "system", "content": "You answer in one word."},
    {
        "role": "user",
        "content": "What colour is the sky on a clear day, and why is it that colour?",
    },
]
ROUTES = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "embeddings": "/v1/embeddings",
}


def _estimate(url: str, api: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/estimate{ROUTES[api][3:]}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    estimate: dict[str, Any] = response.json()
    return estimate


def _call(url: str, api: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{ROUTES[api]}", json=body, headers=headers, timeout=10)


def _body(api: str, model: str, limit: int | None) -> dict[str, Any]:
    if api == "chat":
        body: dict[str, Any] = {"model": model, "messages": MESSAGES}
        if limit:
            body["max_tokens"] = limit
    else:
        body = {
            "model": model,
            "instructions": MESSAGES[0]["content"],
            "input": MESSAGES[1]["content"],
        }
        if limit:
            body["max_output_tokens"] = limit
    return body


def _openai_usage(fake: FakeOpenAI, inp: int, out: int) -> None:
    fake.usage = {
        "prompt_tokens": inp,
        "cached_tokens": 0,
        "completion_tokens": out,
        "reasoning_tokens": 0,
    }


def _gemini_native(inp: int, out: int) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Blue."}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": inp,
            "candidatesTokenCount": out - 100,
            "thoughtsTokenCount": 100,
            "totalTokenCount": inp + out,
        },
        "modelVersion": "gemini-3-flash-preview",
    }


def _gemini_compat(inp: int, out: int) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "gemini-3-flash-preview",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Blue."},
            }
        ],
        "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out},
    }


CASES = [
    # (id, client api, model, request limit, expected max_output_tokens, upstream)
    ("chat-passthrough", "chat", "openai:chat_gpt-4o-mini", 1500, 1500, "openai"),
    (
        "chat-clamped",
        "chat",
        "openai:chat_gpt-4o-mini",
        5000,
        2000,
        "openai",
    ),  # limits.max_output_tokens
    ("responses-passthrough", "responses", "openai:reasoning_o3-mini", 1200, 1200, "openai"),
    ("chat-on-responses", "chat", "openai:gpt-4o-mini", 700, 700, "openai"),
    ("responses-on-chat", "responses", "openai:chat_gpt-4o-mini", 900, 900, "openai"),
    ("chat-per-token-prices", "chat", "openai:chat_o4-mini", 800, 800, "openai"),
    # gemini_level with counts_against_output: 1000 raised by the default effort's 0.30 reserve
    ("gemini-native", "chat", "gemini:native-sdk-3-flash-preview", 1000, 1300, "gemini-native"),
    (
        "responses-on-gemini-native",
        "responses",
        "gemini:native-sdk-3-flash-preview",
        1000,
        1300,
        "gemini-native",
    ),
    # default effort minimal (0.25 reserve): 800 -> 1000; and no limit at all: the model's max
    ("gemini-compat", "chat", "gemini:openai-3-flash-preview", 800, 1000, "gemini-compat"),
    (
        "gemini-compat-no-limit",
        "chat",
        "gemini:openai-3-flash-preview",
        None,
        65536,
        "gemini-compat",
    ),
]


@pytest.mark.parametrize(
    ("api", "model", "limit", "max_out", "upstream"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_the_estimate_is_the_cost_of_a_call_that_reaches_its_maximum(
    gateway_url: str,
    fake_openai: FakeOpenAI,
    fake_gemini: FakeGemini,
    api: str,
    model: str,
    limit: int | None,
    max_out: int,
    upstream: str,
) -> None:
    body = _body(api, model, limit)
    estimate = _estimate(gateway_url, api, body)
    assert not fake_openai.requests and not fake_gemini.requests  # nothing went upstream
    assert estimate["model"] == model and estimate["max_output_tokens"] == max_out
    inp = estimate["input_tokens"]
    assert inp > 10
    if upstream == "openai":
        _openai_usage(fake_openai, inp, max_out)
    elif upstream == "gemini-native":
        fake_gemini.script(_gemini_native(inp, max_out))
    else:
        fake_gemini.script(_gemini_compat(inp, max_out))
    try:
        response = _call(gateway_url, api, body)
    finally:
        fake_openai.usage = {
            "prompt_tokens": 1200,
            "cached_tokens": 200,
            "completion_tokens": 300,
            "reasoning_tokens": 100,
        }
    assert response.status_code == 200, response.text
    assert Decimal(response.headers["x-gateway-cost-usd"]) == Decimal(
        str(estimate["cost_usd"]["max"])
    )
    assert Decimal(str(estimate["cost_usd"]["min"])) < Decimal(str(estimate["cost_usd"]["max"]))


def test_embeddings_estimates_equal_the_cost(
    gateway_url: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini
) -> None:
    inputs = ["the first text to embed", "a second, somewhat longer text to embed here"]
    # Gemini native embeddings: the gateway counts the input itself, with the same tokenizer.
    body = {"model": "gemini:native-embed", "input": inputs}
    estimate = _estimate(gateway_url, "embeddings", body)
    assert estimate["max_output_tokens"] == 0
    assert estimate["cost_usd"]["min"] == estimate["cost_usd"]["max"]
    response = _call(gateway_url, "embeddings", body)
    assert response.status_code == 200, response.text
    assert Decimal(response.headers["x-gateway-cost-usd"]) == Decimal(
        str(estimate["cost_usd"]["max"])
    )
    # OpenAI embeddings: the upstream's usage, scripted to the estimate.
    body = {"model": "openai:embed_small", "input": inputs, "encoding_format": "float"}
    estimate = _estimate(gateway_url, "embeddings", body)
    answer = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]} for i in range(2)],
        "usage": {
            "prompt_tokens": estimate["input_tokens"],
            "total_tokens": estimate["input_tokens"],
        },
    }
    fake_openai.script.append(Scripted(raw=orjson.dumps(answer)))
    response = _call(gateway_url, "embeddings", body)
    assert response.status_code == 200, response.text
    assert Decimal(response.headers["x-gateway-cost-usd"]) == Decimal(
        str(estimate["cost_usd"]["max"])
    )


def test_estimate_reports_the_policy_and_spends_nothing(
    gateway_url: str, fake_openai: FakeOpenAI
) -> None:
    before = total(scrape(gateway_url), "gateway_requests_total")
    body = {
        "model": "openai:reasoning_o3-mini",
        "input": "hi",
        "temperature": 0.2,
        "max_output_tokens": 9000,
    }
    estimate = _estimate(gateway_url, "responses", body)
    assert estimate["policy"]["dropped"] == ["temperature"]
    assert "clamped max_output_tokens from 9000 to 2000" in estimate["policy"]["notes"]
    assert "reasoning_effort defaulted to low" in estimate["policy"]["notes"]
    assert estimate["max_output_tokens"] == 2000
    assert not fake_openai.requests
    assert total(scrape(gateway_url), "gateway_requests_total") == before
    # Errors are the real route's: unknown model, bad body.
    response = httpx.post(
        f"{gateway_url}/v1/estimate/chat/completions", json={"model": "nope", "messages": []}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    response = httpx.post(
        f"{gateway_url}/v1/estimate/embeddings",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )  # a JSON body, malformed
    assert response.status_code == 400


def test_max_cost_header_refuses_before_any_upstream_call(
    gateway_url: str, fake_openai: FakeOpenAI
) -> None:
    body = _body("chat", "openai:chat_gpt-4o-mini", 2000)
    worst = Decimal(str(_estimate(gateway_url, "chat", body)["cost_usd"]["max"]))
    response = _call(
        gateway_url, "chat", body, **{"x-gateway-max-cost-usd": str(worst - Decimal("0.000001"))}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "cost_limit_exceeded" and error["param"] == "x-gateway-max-cost-usd"
    assert not fake_openai.requests
    response = _call(gateway_url, "chat", body, **{"x-gateway-max-cost-usd": str(worst)})
    assert response.status_code == 200 and len(fake_openai.requests) == 1
    # A worst case that nothing bounds (no limit, no model maximum) is refused too.
    response = _call(
        gateway_url,
        "responses",
        {"model": "openai:gpt-4o-mini", "input": "hi"},
        **{"x-gateway-max-cost-usd": "100"},
    )
    assert response.status_code == 400 and "unknown" in response.json()["error"]["message"]
    response = _call(gateway_url, "chat", body, **{"x-gateway-max-cost-usd": "lots"})
    assert (
        response.status_code == 400 and response.json()["error"]["code"] == "invalid_request_header"
    )
    assert len(fake_openai.requests) == 1


IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in it?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]


def test_a_missing_capability_is_refused_before_the_call(
    gateway_url: str, fake_openai: FakeOpenAI
) -> None:
    # openai:gpt-4o-mini declares [chat, streaming, tools]: no vision.
    response = _call(gateway_url, "chat", {"model": "openai:gpt-4o-mini", "messages": IMAGE})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "model_capability_missing" and "'vision'" in error["message"]
    # openai:chat_o4-mini declares no json_mode ...
    response = _call(
        gateway_url,
        "chat",
        {
            "model": "openai:chat_o4-mini",
            "messages": MESSAGES,
            "response_format": {"type": "json_object"},
        },
    )
    assert response.json()["error"]["code"] == "model_capability_missing"
    # ... openai:reasoning_o3-mini neither, but its `allowed` list drops `text`: nothing is needed.
    response = _call(
        gateway_url,
        "responses",
        {
            "model": "openai:reasoning_o3-mini",
            "input": "x",
            "text": {"format": {"type": "json_object"}},
        },
    )
    assert response.status_code == 200
    # openai:unpriced declares nothing: not checked.
    response = _call(
        gateway_url, "chat", {"model": "openai:unpriced", "messages": IMAGE, "tools": TOOLS}
    )
    assert response.status_code == 200
    assert len(fake_openai.requests) == 2
    # The estimate route refuses the same way.
    response = httpx.post(
        f"{gateway_url}/v1/estimate/chat/completions",
        json={"model": "openai:gpt-4o-mini", "messages": IMAGE},
    )
    assert (
        response.status_code == 400
        and response.json()["error"]["code"] == "model_capability_missing"
    )


FALLBACK_MODELS = """
models:
  openai:text-only:
    provider: openai
    model: gpt-text
    endpoint: chat_completions
    capabilities: [chat]
    pricing: {input_per_mm: 1, output_per_mm: 2}
    fallbacks: [openai:sees]
  openai:sees:
    provider: openai
    model: gpt-sees
    endpoint: chat_completions
    capabilities: [chat, vision]
    pricing: {input_per_mm: 3, output_per_mm: 4}
    max_output_tokens: 100
    verification: {status: verified, last_checked: 2026-11-30, verified_capabilities: [chat, vision]}
"""


@pytest.fixture(scope="module")
def fallback_url(
    fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("capability")
    (folder / "models").mkdir()
    (folder / "providers.yaml").write_text((REGISTRY / "providers.yaml").read_text())
    (folder / "models" / "m.yaml").write_text(FALLBACK_MODELS)
    yield from start_gateway(registry=str(folder))


def test_the_first_fallback_with_the_capability_takes_the_request(
    fallback_url: str, fake_openai: FakeOpenAI
) -> None:
    response = _call(fallback_url, "chat", {"model": "openai:text-only", "messages": IMAGE})
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-model"] == "openai:sees"
    assert [r.json["model"] for r in fake_openai.requests] == ["gpt-sees"]
    samples = scrape(fallback_url)
    assert (
        total(
            samples,
            "gateway_fallbacks_total",
            model="openai:text-only",
            fallback="openai:sees",
            reason="capability",
        )
        == 1
    )
    # Text only: the model itself answers.
    response = _call(fallback_url, "chat", {"model": "openai:text-only", "messages": MESSAGES})
    assert response.headers["x-gateway-model"] == "openai:text-only"
    # The estimate names the model that would answer, and why.
    estimate = _estimate(fallback_url, "chat", {"model": "openai:text-only", "messages": IMAGE})
    assert estimate["model"] == "openai:sees" and estimate["max_output_tokens"] == 100
    assert "openai:text-only lacks the 'vision' capability" in estimate["policy"]["notes"]


def test_models_list_shows_capabilities_verification_window_and_prices(fallback_url: str) -> None:
    data = {m["id"]: m for m in httpx.get(f"{fallback_url}/v1/models").json()["data"]}
    sees = data["openai:sees"]
    assert sees["capabilities"] == ["chat", "vision"]
    assert sees["verification"] == {
        "status": "verified",
        "last_checked": "2026-11-30",
        "verified_capabilities": ["chat", "vision"],
    }
    assert sees["pricing"] == {"input_per_mm": 3.0, "output_per_mm": 4.0}
    assert data["openai:text-only"]["verification"]["status"] == "unverified"
