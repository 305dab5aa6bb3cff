"""Internal chat request -> Responses create body (a `responses` upstream): golden and refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.translate.responses import chat_request_to_responses
from tests.unit.test_translate_responses import SCHEMA

CHAT_REQUEST: dict[str, Any] = {
    "model": "gpt-5-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "French."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png"}},
                {"type": "file", "file": {"file_id": "file_1"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "hidden",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "look", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "a cat"}]},
    ],
    "tools": [{"type": "function", "function": {"name": "look", "parameters": SCHEMA}}],
    "tool_choice": "auto",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": SCHEMA, "strict": True},
    },
    "verbosity": "low",
    "reasoning_effort": "minimal",
    "include_reasoning": True,
    "max_output_tokens": 300,
    "temperature": 1,
    "top_p": 1,
    "parallel_tool_calls": True,
    "metadata": {"a": "b"},
    "user": "u",
    "stream": True,
    "stream_options": {"include_usage": True},
    "n": 1,
    "seed": 7,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logprobs": False,
    "thinking_level": "low",
}

RESPONSES_FROM_CHAT: dict[str, Any] = {
    "model": "gpt-5-mini",
    "store": False,
    "input": [
        {"type": "message", "role": "system", "content": "Be brief."},
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "French."}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://x/i.png", "detail": "auto"},
                {"type": "input_file", "file_id": "file_1"},
            ],
        },
        {"type": "message", "role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
    ],
    "tools": [{"type": "function", "name": "look", "parameters": SCHEMA, "strict": False}],
    "tool_choice": "auto",
    "text": {
        "format": {"type": "json_schema", "name": "a", "schema": SCHEMA, "strict": True},
        "verbosity": "low",
    },
    "reasoning": {"effort": "minimal", "summary": "auto"},
    "max_output_tokens": 300,
    "temperature": 1,
    "top_p": 1,
    "parallel_tool_calls": True,
    "metadata": {"a": "b"},
    "user": "u",
    "stream": True,
}


def test_chat_request_to_responses_golden() -> None:
    assert chat_request_to_responses(copy.deepcopy(CHAT_REQUEST)) == RESPONSES_FROM_CHAT


def test_chat_request_keeps_explicit_store_and_legacy_max_tokens() -> None:
    body = chat_request_to_responses(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "store": True,
            "max_tokens": 9,
        }
    )
    assert body["store"] is True
    assert body["max_output_tokens"] == 9


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"stop": ["\n"]}, "stop"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": -1}, "presence_penalty"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tools": [{"type": "custom", "custom": {"name": "c"}}]}, "tools"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}
                ]
            },
            "messages",
        ),
    ],
)
def test_chat_request_refuses_what_responses_cannot_carry(
    extra: dict[str, Any], param: str
) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(BadRequest) as info:
        chat_request_to_responses(body)
    assert info.value.status == 400
    assert info.value.param == param


def test_chat_logprobs_ask_the_responses_api_for_them() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "logprobs": True, "top_logprobs": 3}  # fmt: skip
    out = chat_request_to_responses(body)
    assert out["include"] == ["message.output_text.logprobs"]
    assert out["top_logprobs"] == 3
    assert "logprobs" not in out
