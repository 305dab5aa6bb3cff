"""The one estimator and the capability check: pure functions of (request, model, policy)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from gateway.capabilities import check, lacking, missing, needed
from gateway.errors import BadRequest
from gateway.estimate import FOREIGN_TOKENIZER_MARGIN, estimate
from gateway.policy import apply_policy
from gateway.registry.schema import ModelEntry, ProviderConfig
from gateway.registry.snapshot import Model
from gateway.tokens import estimate_chat_tokens, estimate_embedding_input_tokens
from gateway.types import ClientAPI

OPENAI = ProviderConfig(kind="openai", base_url="http://x/v1", api_key_env="K")
GEMINI = ProviderConfig(kind="gemini", base_url="http://x/v1beta", api_key_env="G")
MESSAGES = [{"role": "user", "content": "Say hello to the estimator, please."}]


def model(provider: ProviderConfig = OPENAI, **entry: Any) -> Model:
    entry.setdefault("provider", "openai" if provider is OPENAI else "gemini")
    entry.setdefault("model", "m")
    return Model("test:model", ModelEntry.model_validate(entry), entry["provider"], provider)


def run(client_api: ClientAPI, body: dict[str, Any], m: Model) -> Any:
    return estimate(client_api, m, apply_policy(client_api, body, m))


def test_chat_estimate_uses_the_clamped_limit_and_prices_exactly() -> None:
    m = model(
        pricing={"input_per_mm": 0.15, "output_per_mm": 0.60},
        limits={"max_output_tokens": 2000},
        max_output_tokens=16384,
    )
    e = run("chat", {"model": "x", "messages": MESSAGES, "max_tokens": 5000}, m)
    tokens = estimate_chat_tokens(MESSAGES)
    assert (e.input_tokens, e.max_output_tokens) == (tokens, 2000)
    assert e.min_cost == Decimal(tokens) * Decimal("0.15") / 1_000_000
    assert e.max_cost == (Decimal(tokens) * Decimal("0.15") + 2000 * Decimal("0.60")) / 1_000_000


def test_no_limit_in_the_request_means_the_models_max_or_the_window_or_unbounded() -> None:
    priced = {"input_per_mm": 1, "output_per_mm": 2}
    body = {"model": "x", "input": "hi"}
    assert (
        run(
            "responses",
            dict(body),
            model(endpoint="responses", pricing=priced, max_output_tokens=100),
        ).max_output_tokens
        == 100
    )
    e = run(
        "responses", dict(body), model(endpoint="responses", pricing=priced, context_window=1000)
    )
    assert e.max_output_tokens == 1000 - e.input_tokens
    unbounded = run("responses", dict(body), model(endpoint="responses", pricing=priced))
    assert (
        unbounded.max_output_tokens is None
        and unbounded.max_cost is None
        and unbounded.min_cost is not None
    )


def test_gemini_reasoning_reserve_raises_the_bound_and_the_foreign_margin_applies() -> None:
    policy = {
        "mode": "gemini_level",
        "param": "thinking_level",
        "map": {"high": "high"},
        "reserve_ratio": {"high": 0.80},
        "counts_against_output": True,
    }
    m = model(
        GEMINI,
        endpoint="gemini_sdk",
        reasoning_policy=policy,
        max_output_tokens=65536,
        pricing={"input_per_mm": 0.5, "output_per_mm": 3},
    )
    e = run(
        "chat",
        {"model": "x", "messages": MESSAGES, "max_tokens": 1000, "reasoning_effort": "high"},
        m,
    )
    assert e.max_output_tokens == 1800  # round(1000 x 1.8)
    assert e.input_tokens == math.ceil(estimate_chat_tokens(MESSAGES) * FOREIGN_TOKENIZER_MARGIN)


def test_long_context_and_service_tier_reach_the_worst_case() -> None:
    m = model(
        pricing={
            "input_per_mm": 1,
            "output_per_mm": 10,
            "tiers": [{"above_input_tokens": 5, "input_per_mm": 2, "output_per_mm": 20}],
            "service_tiers": {"priority": {"input_per_mm": 3, "output_per_mm": 30}},
        },
        max_output_tokens=100,
    )
    e = run("chat", {"model": "x", "messages": MESSAGES, "service_tier": "priority"}, m)
    assert e.input_tokens > 5
    # priority has no long-context prices: the standard long-context ones bill it
    assert e.max_cost == (Decimal(e.input_tokens) * 2 + 100 * 20) / 1_000_000
    # min: the input alone, at the standard service tier's price for its size (the tier)
    assert e.min_cost == Decimal(e.input_tokens) * 2 / 1_000_000


def test_embeddings_estimate_counts_every_input_and_no_output() -> None:
    m = model(
        endpoint="embeddings",
        model="text-embedding-3-small",
        pricing={"input_per_mm": 0.02, "output_per_mm": 0},
    )
    e = run("embeddings", {"model": "x", "input": ["one two", "three"]}, m)
    assert e.input_tokens == sum(
        estimate_embedding_input_tokens(["one two", "three"], encoding="cl100k_base")
    )
    assert e.max_output_tokens == 0 and e.min_cost == e.max_cost


def test_n_choices_multiply_the_output_bound() -> None:
    m = model(pricing={"input_per_mm": 1, "output_per_mm": 1}, max_output_tokens=50)
    assert run("chat", {"model": "x", "messages": MESSAGES, "n": 3}, m).max_output_tokens == 150


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
        ],
    }
]
AUDIO = [
    {
        "role": "user",
        "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}],
    }
]


@pytest.mark.parametrize(
    ("client_api", "body", "need"),
    [
        ("chat", {"messages": MESSAGES, "tools": TOOLS}, "tools"),
        ("chat", {"messages": MESSAGES, "tool_choice": "required"}, "tools"),
        ("chat", {"messages": IMAGE}, "vision"),
        ("chat", {"messages": AUDIO}, "audio"),
        ("chat", {"messages": MESSAGES, "response_format": {"type": "json_object"}}, "json_mode"),
        (
            "responses",
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "vision",
        ),
        (
            "responses",
            {"input": "hi", "text": {"format": {"type": "json_schema", "name": "a", "schema": {}}}},
            "json_mode",
        ),
        ("responses", {"input": "hi", "reasoning": {"effort": "high"}}, "reasoning"),
        ("chat", {"messages": MESSAGES, "reasoning_effort": "low"}, "reasoning"),
    ],
)
def test_what_a_request_needs(client_api: ClientAPI, body: dict[str, Any], need: str) -> None:
    m = model(
        endpoint="responses" if client_api == "responses" else "chat_completions",
        capabilities=["chat"],
    )
    result = apply_policy(client_api, {"model": "x", **body}, m)
    assert need in needed(client_api, result)
    with pytest.raises(BadRequest) as info:
        check(client_api, m, result)
    assert info.value.code == "model_capability_missing" and f"'{need}'" in info.value.message
    # declared: passes; no capabilities list at all: not checked
    full = model(endpoint=m.endpoint, capabilities=["chat", need])
    check(client_api, full, apply_policy(client_api, {"model": "x", **body}, full))
    bare = model(endpoint=m.endpoint)
    check(client_api, bare, apply_policy(client_api, {"model": "x", **body}, bare))


def test_what_the_policy_dropped_or_defaulted_needs_nothing() -> None:
    m = model(
        capabilities=["chat"],
        param_policy={"disabled": ["reasoning_effort", "tools"]},
        reasoning_policy=None,
    )
    result = apply_policy(
        "chat", {"model": "x", "messages": MESSAGES, "reasoning_effort": "high", "tools": TOOLS}, m
    )
    assert needed("chat", result) == ()
    defaulted = model(
        capabilities=["chat"], reasoning_policy={"mode": "openai_effort", "default": "low"}
    )
    result = apply_policy("chat", {"model": "x", "messages": MESSAGES}, defaulted)
    assert result.effort == "low" and needed("chat", result) == ()
    # tool_choice none and a plain text request need nothing either
    plain = apply_policy(
        "chat", {"model": "x", "messages": MESSAGES, "tool_choice": "none"}, model()
    )
    assert needed("chat", plain) == ()


_REQUESTS: list[tuple[ClientAPI, dict[str, Any]]] = [
    ("chat", {"messages": MESSAGES}),
    ("chat", {"messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("chat", {"messages": MESSAGES, "tool_choice": "auto"}),
    (
        "chat",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                        {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                    ],
                }
            ]
        },
    ),
    ("chat", {"messages": MESSAGES, "response_format": {"type": "json_object"}}),
    ("chat", {"messages": MESSAGES, "reasoning_effort": "high"}),
    ("responses", {"input": [{"type": "input_image", "image_url": "data:,"}]}),
    ("responses", {"input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}),
    ("embeddings", {"input": "hi"}),
]
_DECLARED: list[list[str]] = [
    ["chat"],
    ["chat", "tools"],
    ["chat", "vision"],
    ["chat", "tools", "vision", "audio"],
    ["chat", "json_mode", "reasoning"],
    ["chat", "tools", "vision", "audio", "json_mode", "reasoning"],
]


def test_lacking_is_the_first_needed_capability_not_declared() -> None:
    # lacking() looks at a need only when the model does not declare it; it must still
    # name what missing(needed(...)) would, in the same order, for every pair below.
    seen: set[str | None] = set()
    for client_api, body in _REQUESTS:
        for declared in _DECLARED:
            if client_api == "embeddings":
                m = model(capabilities=declared, endpoint="embeddings")
            else:
                m = model(capabilities=declared)
            result = apply_policy(client_api, {"model": "x", **body}, m)
            expected = missing(m, needed(client_api, result))
            assert lacking(client_api, m, result) == expected, (client_api, body, declared)
            seen.add(expected)
    # The table exercises every answer, not only None.
    assert seen == {None, "tools", "vision", "audio", "json_mode", "reasoning"}
