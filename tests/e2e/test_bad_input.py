"""Garbage in: every malformed body is a clear OpenAI-shaped 400 before any upstream call."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from gateway.proxy.limits import MAX_DEPTH, MAX_ITEMS
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai import FakeOpenAI

CHAT_MODELS = [
    "openai:chat_gpt-4o-mini",
    "openai:gpt-4o-mini",
    "gemini:native-sdk-3-flash-preview",
    "gemini:openai-3-flash-preview",
]
ROUTES = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "embeddings": "/v1/embeddings",
}
BASE: dict[str, dict[str, Any]] = {
    "chat": {"messages": [{"role": "user", "content": "hi"}]},
    "responses": {"input": "hi"},
    "embeddings": {"input": "hi"},
}
CHAT_CASES: list[tuple[str, Any]] = [
    ("messages", None),
    ("messages", []),
    ("messages", "hi"),
    ("messages", [5]),
    ("messages", [{"content": "x"}]),
    ("messages", [{"role": "user", "content": 5}]),
    ("messages", [{"role": "user", "content": {"a": 1}}]),
    ("messages", [{"role": "user", "content": [5]}]),
    ("messages", [{"role": "user", "content": [{"text": "x"}]}]),
    ("messages", [{"role": "user", "content": [{"type": "text", "text": 5}]}]),
    ("messages", [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]),
    ("messages", [{"role": "assistant", "tool_calls": 5}]),
    ("messages", [{"role": "assistant", "tool_calls": [{"function": "f"}]}]),
    ("tools", {}),
    ("tools", [5]),
    ("tools", "x"),
    ("tool_choice", 5),
    ("response_format", "json"),
    ("stop", 5),
    ("stop", [1]),
    ("temperature", "hot"),
    ("temperature", True),
    ("max_tokens", 1.5),
    ("max_tokens", 0),
    ("stream", "yes"),
    ("stream_options", 5),
    ("reasoning_effort", 5),
    ("n", "2"),
]
RESPONSES_CASES: list[tuple[str, Any]] = [
    ("input", None),
    ("input", 5),
    ("input", [5]),
    ("input", [{"type": 5}]),
    ("input", [{"content": "x"}]),
    ("input", [{"role": "user", "content": 5}]),
    ("input", [{"type": "function_call", "name": "f"}]),
    ("input", [{"type": "function_call_output", "output": "x"}]),
    ("instructions", 5),
    ("reasoning", "high"),
    ("text", "x"),
    ("tools", [1]),
    ("max_output_tokens", "9"),
    ("include", "x"),
]
EMBEDDING_CASES: list[tuple[str, Any]] = [
    ("input", None),
    ("input", []),
    ("input", 5),
    ("input", [None]),
    ("input", ["a", 1]),
    ("input", [[1, "a"]]),
    ("input", {"text": "x"}),
    ("encoding_format", 5),
    ("dimensions", "8"),
]


def _post(url: str, api: str, body: Any) -> httpx.Response:
    return httpx.post(
        f"{url}{ROUTES[api]}",
        content=orjson.dumps(body),
        headers={"content-type": "application/json"},
    )


def _assert_400(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    error: dict[str, Any] = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_malformed_chat_bodies(
    gateway_url: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, model: str
) -> None:
    for field, value in CHAT_CASES:
        error = _assert_400(
            _post(gateway_url, "chat", {**BASE["chat"], "model": model, field: value})
        )
        assert error["param"] and error["param"].split("[")[0].split(".")[0] in (
            field,
            "max_output_tokens",
        ), error
    for api, cases in (("responses", RESPONSES_CASES),):
        for field, value in cases:
            _assert_400(_post(gateway_url, api, {**BASE[api], "model": model, field: value}))
    assert fake_openai.requests == [] and fake_gemini.requests == []


@pytest.mark.parametrize(
    "model", ["openai:embed_small", "gemini:native-embed", "gemini:embed_openai_compat"]
)
def test_malformed_embedding_bodies(
    gateway_url: str, fake_openai: FakeOpenAI, fake_gemini: FakeGemini, model: str
) -> None:
    for field, value in EMBEDDING_CASES:
        _assert_400(
            _post(gateway_url, "embeddings", {**BASE["embeddings"], "model": model, field: value})
        )
    assert fake_openai.requests == [] and fake_gemini.requests == []


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"null",
        b"5",
        b'"x"',
        b"[]",
        b"\xff\xfe",
        b'{"model": }',
        b"[" * 2000 + b"]" * 2000,
    ],
)
def test_bodies_that_are_not_a_json_object(gateway_url: str, raw: bytes) -> None:
    for route in ROUTES.values():
        r = httpx.post(
            f"{gateway_url}{route}", content=raw, headers={"content-type": "application/json"}
        )
        assert _assert_400(r)["code"] == "invalid_json"


def _objects(count: int) -> Any:
    value: Any = "deep"
    for _ in range(count):
        value = {"x": value}
    return value


def test_nesting_deeper_than_the_limit_is_a_400(gateway_url: str, fake_openai: FakeOpenAI) -> None:
    # The body, response_format and json_schema are three levels, so MAX_DEPTH - 3 objects
    # inside the schema make MAX_DEPTH: fine. (A JSON schema is free-form for OpenAI too,
    # unlike metadata, whose values the fake upstream, like OpenAI, takes as strings only.)
    def body(levels: int) -> dict[str, Any]:
        schema = {"name": "n", "schema": _objects(levels)}
        return {
            **BASE["chat"],
            "model": "openai:chat_gpt-4o-mini",
            "response_format": {"type": "json_schema", "json_schema": schema},
        }

    ok = body(MAX_DEPTH - 3)
    assert _post(gateway_url, "chat", ok).status_code == 200
    deep = body(MAX_DEPTH - 2)
    assert _assert_400(_post(gateway_url, "chat", deep))["code"] == "invalid_request_body"
    assert len(fake_openai.requests) == 1


def test_too_many_messages_is_a_400(gateway_url: str, fake_openai: FakeOpenAI) -> None:
    many = [{"role": "user", "content": "x"}] * (MAX_ITEMS + 1)
    error = _assert_400(
        _post(gateway_url, "chat", {"model": "openai:chat_gpt-4o-mini", "messages": many})
    )
    assert (error["code"], error["param"]) == ("too_many_items", "messages")
    items = [{"role": "user", "content": "x"}] * (MAX_ITEMS + 1)
    assert _assert_400(
        _post(gateway_url, "responses", {"model": "openai:gpt-4o-mini", "input": items})
    )
    assert fake_openai.requests == []


def test_a_missing_or_unknown_model(gateway_url: str) -> None:
    assert (
        _assert_400(_post(gateway_url, "chat", BASE["chat"]))["code"]
        == "missing_required_parameter"
    )
    r = _post(gateway_url, "chat", {**BASE["chat"], "model": "no-such-model"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
