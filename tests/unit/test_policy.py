from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.policy import apply_policy
from gateway.registry.schema import ModelEntry, ProviderConfig
from gateway.registry.snapshot import Model

OPENAI = ProviderConfig(kind="openai", base_url="http://x/v1", api_key_env="K")
GEMINI = ProviderConfig(kind="gemini", base_url="http://x/v1beta", api_key_env="G")

LEVEL_POLICY = {
    "mode": "gemini_level",
    "param": "thinking_level",
    "default": "minimal",
    "map": {
        "none": "minimal",
        "minimal": "minimal",
        "low": "low",
        "medium": "medium",
        "high": "high",
    },
    "reserve_ratio": {"none": 0.0, "minimal": 0.25, "low": 0.30, "medium": 0.50, "high": 0.80},
    "counts_against_output": True,
}
BUDGET_POLICY = {
    "mode": "gemini_budget",
    "param": "thinking_budget",
    "default": "low",
    "budget_map": {"none": 0, "minimal": 500, "low": 1000, "medium": 2000, "high": 5000},
    "counts_against_output": True,
}


def model(provider: ProviderConfig = OPENAI, **entry: Any) -> Model:
    entry.setdefault("provider", "openai" if provider is OPENAI else "gemini")
    entry.setdefault("model", "m")
    return Model("test:model", ModelEntry.model_validate(entry), entry["provider"], provider)


def test_order_mapped_disabled_allowed_then_clamp() -> None:
    m = model(
        endpoint="responses",
        param_policy={
            "mapped": {"top_k": "top_p"},
            "disabled": ["temperature"],
            "allowed": ["max_output_tokens", "top_p", "tools"],
        },
        limits={"max_output_tokens": 2000},
    )
    body = {
        "model": "x",
        "input": "hi",
        "instructions": "be brief",
        "top_k": 0.5,
        "temperature": 0.2,
        "seed": 7,
        "max_output_tokens": 5000,
    }
    result = apply_policy("responses", body, m)
    assert result.params == {
        "model": "x",
        "input": "hi",
        "instructions": "be brief",
        "top_p": 0.5,
        "max_output_tokens": 2000,
    }
    assert result.dropped == ["temperature", "seed"]
    assert "clamped max_output_tokens from 5000 to 2000" in result.notes


def test_chat_max_tokens_names_are_one_parameter() -> None:
    m = model(endpoint="chat_completions", limits={"max_output_tokens": 100})
    result = apply_policy("chat", {"model": "x", "messages": [], "max_tokens": 50}, m)
    assert result.params["max_output_tokens"] == 50
    assert "max_tokens" not in result.params
    result = apply_policy(
        "chat", {"model": "x", "messages": [], "max_tokens": 50, "max_completion_tokens": 500}, m
    )
    assert result.params["max_output_tokens"] == 100  # the current name wins, then the clamp


def test_strict_mode_names_the_parameter() -> None:
    m = model(endpoint="chat_completions", param_policy={"disabled": ["temperature"]})
    with pytest.raises(BadRequest) as info:
        apply_policy("chat", {"model": "x", "messages": [], "temperature": 1}, m, strict=True)
    assert info.value.param == "temperature"
    assert info.value.status == 400


def test_disabled_stream_is_emulated_not_dropped() -> None:
    m = model(endpoint="chat_completions", param_policy={"disabled": ["stream"]})
    result = apply_policy(
        "chat",
        {"model": "x", "messages": [], "stream": True, "stream_options": {"include_usage": True}},
        m,
        strict=True,
    )
    assert result.client_stream and not result.upstream_stream
    assert result.include_usage
    assert result.dropped == []
    assert "stream" not in result.params and "stream_options" not in result.params


def test_allowed_keeps_stream_options_with_stream_and_encoding_format() -> None:
    m = model(endpoint="chat_completions", param_policy={"allowed": ["stream"]})
    result = apply_policy(
        "chat",
        {
            "model": "x",
            "messages": [],
            "stream": True,
            "stream_options": {"include_usage": False},
            "user": "u",
        },
        m,
    )
    assert result.upstream_stream
    assert result.params["stream_options"] == {"include_usage": False}
    assert result.dropped == ["user"]


def test_openai_effort_default_and_passthrough() -> None:
    m = model(endpoint="responses", reasoning_policy={"mode": "openai_effort", "default": "low"})
    result = apply_policy("responses", {"model": "x", "input": "hi"}, m)
    assert result.params["reasoning_effort"] == "low"
    result = apply_policy(
        "responses",
        {"model": "x", "input": "hi", "reasoning": {"effort": "high", "summary": "auto"}},
        m,
    )
    assert result.params["reasoning_effort"] == "high"
    assert result.params["reasoning"] == {"summary": "auto"}


def test_invalid_effort_is_a_400() -> None:
    m = model(endpoint="responses")
    with pytest.raises(BadRequest) as info:
        apply_policy("chat", {"model": "x", "messages": [], "reasoning_effort": "max-ish"}, m)
    assert info.value.param == "reasoning_effort"


def test_thinking_vocabulary_is_dropped_for_openai() -> None:
    m = model(endpoint="chat_completions")
    result = apply_policy(
        "chat", {"model": "x", "messages": [], "thinking_budget": 10, "include_thoughts": True}, m
    )
    assert result.dropped == ["thinking_budget", "include_thoughts"]


def test_gemini_level_raises_max_output_tokens_after_the_clamp() -> None:
    m = model(
        GEMINI,
        endpoint="chat_completions",
        max_output_tokens=65536,
        limits={"max_output_tokens": 2000},
        reasoning_policy=LEVEL_POLICY,
    )
    body = {"model": "x", "messages": [], "max_tokens": 5000, "reasoning_effort": "high"}
    result = apply_policy("chat", body, m)
    assert result.params["thinking_level"] == "high"
    assert result.params["max_output_tokens"] == 3600  # 2000 x 1.8
    assert "reasoning_effort" not in result.params
    assert "thinking_budget" not in result.params


def test_gemini_level_never_above_the_model_maximum_and_default_fills() -> None:
    m = model(GEMINI, endpoint="gemini_sdk", max_output_tokens=2200, reasoning_policy=LEVEL_POLICY)
    result = apply_policy("chat", {"model": "x", "messages": [], "max_tokens": 2000}, m)
    assert result.effort == "minimal"
    assert result.params["thinking_level"] == "minimal"
    assert result.params["max_output_tokens"] == 2200  # 2500 capped at the model's maximum


def test_gemini_budget_maps_effort_and_explicit_budget_wins() -> None:
    m = model(GEMINI, endpoint="gemini_sdk", reasoning_policy=BUDGET_POLICY)
    result = apply_policy("chat", {"model": "x", "messages": [], "reasoning_effort": "medium"}, m)
    assert result.params["thinking_budget"] == 2000
    assert "thinking_level" not in result.params
    result = apply_policy(
        "chat",
        {
            "model": "x",
            "messages": [],
            "reasoning_effort": "medium",
            "thinking_budget": 777,
            "thinking_level": "high",
        },
        m,
    )
    assert result.params["thinking_budget"] == 777
    assert "thinking_level" not in result.params


def test_gemini_budget_is_clamped_below_the_output_cap() -> None:
    m = model(GEMINI, endpoint="gemini_sdk", reasoning_policy=BUDGET_POLICY)
    result = apply_policy(
        "chat", {"model": "x", "messages": [], "reasoning_effort": "high", "max_tokens": 1000}, m
    )
    assert result.params["thinking_budget"] == 900
    assert result.params["max_output_tokens"] == 1000


def test_include_reasoning_asks_for_thoughts() -> None:
    m = model(GEMINI, endpoint="gemini_sdk", reasoning_policy=LEVEL_POLICY)
    result = apply_policy("chat", {"model": "x", "messages": [], "include_reasoning": True}, m)
    assert result.include_thoughts
    assert result.params["include_thoughts"] is True
    assert "include_reasoning" not in result.params
    quiet = apply_policy("chat", {"model": "x", "messages": []}, m)
    assert not quiet.include_thoughts and "include_thoughts" not in quiet.params


def test_bad_max_tokens_is_a_400() -> None:
    m = model(endpoint="chat_completions")
    for bad in (0, -1, "10", 1.5, True):
        with pytest.raises(BadRequest):
            apply_policy("chat", {"model": "x", "messages": [], "max_tokens": bad}, m)


def test_embedding_native_settings_dropped_for_openai() -> None:
    m = model(endpoint="embeddings")
    result = apply_policy(
        "embeddings",
        {
            "model": "x",
            "input": "a",
            "task_type": "X",
            "encoding_format": "base64",
            "output_dimensionality": 256,
        },
        m,
    )
    assert result.dropped == ["task_type"]
    assert result.params["dimensions"] == 256
    assert result.params["encoding_format"] == "base64"
