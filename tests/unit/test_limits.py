"""Input limits: nesting depth, item counts, and the context window estimate."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import BadRequest
from gateway.proxy import limits
from gateway.registry.schema import ModelEntry, ProviderConfig
from gateway.registry.snapshot import Model
from gateway.types import ClientAPI


def _model(window: int | None) -> Model:
    provider = ProviderConfig(kind="openai", base_url="http://x")
    return Model("m", ModelEntry(provider="p", model="m", context_window=window), "p", provider)


def test_depth_at_the_limit_passes_and_one_more_fails() -> None:
    value: Any = {}  # the body, MAX_DEPTH - 2 lists, this object: MAX_DEPTH levels
    for _ in range(limits.MAX_DEPTH - 2):
        value = [value]
    limits.check_depth({"x": value}, orjson.dumps({"x": value}))
    with pytest.raises(BadRequest):
        limits.check_depth({"x": [value]}, orjson.dumps({"x": [value]}))


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    body = {"messages": [{"role": "user", "content": "[" * 500 + "{" * 500}]}
    limits.check_depth(body, orjson.dumps(body))  # counted as a maybe, then walked: 3 deep


def test_item_counts() -> None:
    limits.check_items("chat", {"messages": [{}] * limits.MAX_ITEMS})
    with pytest.raises(BadRequest) as info:
        limits.check_items("responses", {"input": [{}] * (limits.MAX_ITEMS + 1)})
    assert info.value.param == "input"


def test_context_check_skips_bodies_smaller_than_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("counted a body that cannot be too long")

    monkeypatch.setattr(limits, "estimate_chat_tokens", boom)
    params = {"messages": [{"role": "user", "content": "hi " * 100}]}
    limits.ContextCheck("chat", 500).check(params, _model(1000))
    limits.ContextCheck("chat", 10**6).check(params, _model(None))


def test_context_check_counts_once_and_compares_with_each_model() -> None:
    params = {"messages": [{"role": "user", "content": "hello " * 300}]}
    check = limits.ContextCheck("chat", 2000)
    with pytest.raises(BadRequest) as info:
        check.check(params, _model(100))
    assert info.value.code == "context_length_exceeded"
    assert check._estimate is not None and 300 < check._estimate < 320
    check.check(params, _model(1000))  # the same estimate, a bigger window: fine


@pytest.mark.parametrize(
    ("api", "params"),
    [
        ("responses", {"input": "hello " * 300, "instructions": "be brief"}),
        ("embeddings", {"input": ["short", "hello " * 300]}),
    ],
)
def test_context_check_for_responses_and_embeddings(api: ClientAPI, params: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        limits.ContextCheck(api, 2000).check(params, _model(100))
