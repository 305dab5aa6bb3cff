"""Body shape checks: real OpenAI requests pass untouched, wrong types are named."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.proxy.validate import check_body
from gateway.types import ClientAPI

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}

VALID: list[tuple[str, dict[str, Any]]] = [
    (
        "chat",
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "name": "ann",
                    "content": [
                        {"type": "text", "text": "What is in this image?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                        },
                        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                        {"type": "file", "file": {"file_id": "file-1"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "c1",
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
            ],
            "tools": [TOOL, {"type": "custom", "custom": {"name": "grammar"}}],
            "tool_choice": {"type": "function"},
            "stop": ["\n"],
            "temperature": 1,
            "top_p": 0.5,
            "max_tokens": None,
            "response_format": {"type": "json_object"},
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": 7,
            "n": 1,
            "logit_bias": {"1": -1},
            "metadata": {"a": "b"},
            "reasoning_effort": "low",
            "extra_vendor_field": [1, {"x": None}],
        },
    ),
    (
        "responses",
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "hi"},
                        {"type": "input_image", "image_url": "https://x/y.png"},
                        {"type": "input_file", "file_id": "file-1"},
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "hello"}],
                },
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "item_reference", "id": "msg_1"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            ],
            "instructions": "Be brief.",
            "tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "web_search"}],
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "text"}},
            "include": ["reasoning.encrypted_content"],
            "max_output_tokens": 100,
            "store": False,
        },
    ),
    ("responses", {"input": "hello"}),
    ("embeddings", {"input": "hello", "encoding_format": "base64", "dimensions": 8}),
    ("embeddings", {"input": ["a", "b"]}),
    ("embeddings", {"input": [1, 2, 3]}),
    ("embeddings", {"input": [[1, 2], [3]]}),
]


@pytest.mark.parametrize(("api", "body"), VALID)
def test_real_requests_pass(api: ClientAPI, body: dict[str, Any]) -> None:
    check_body(api, body)


@pytest.mark.parametrize(
    ("api", "body", "param"),
    [
        (
            "chat",
            {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": "x"}], "max_tokens": True},
            "max_tokens",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            "tools[0].function.name",
        ),
        (
            "chat",
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            "responses",
            {"input": [{"type": "function_call_output", "output": "x"}]},
            "input[0].call_id",
        ),
        ("responses", {"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ("embeddings", {"input": [1, "a"]}, "input"),
    ],
)
def test_wrong_shapes_name_the_parameter(api: ClientAPI, body: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        check_body(api, body)
    assert info.value.param == param
