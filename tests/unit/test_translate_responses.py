"""Responses create body -> internal chat request: golden, refusals, round trip back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.translate.responses import chat_request_to_responses, responses_request_to_chat

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

RESPONSES_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "instructions": "Be brief.",
    "input": [
        {"role": "developer", "content": "Answer in French."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather here?"},
                {"type": "input_image", "image_url": "https://x/img.png", "detail": "low"},
                {
                    "type": "input_file",
                    "file_data": "data:application/pdf;base64,AAA",
                    "filename": "a.pdf",
                },
            ],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}]},
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "type": "function_call",
            "call_id": "call_2",
            "name": "weather",
            "arguments": '{"city":"Lyon"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": [{"type": "input_text", "text": "rain"}],
        },
        {"role": "user", "content": "Thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "weather",
            "description": "Get weather",
            "parameters": SCHEMA,
            "strict": True,
        }
    ],
    "tool_choice": {"type": "function", "name": "weather"},
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}},
    "reasoning": {"effort": "low", "summary": "auto"},
    "max_output_tokens": 500,
    "temperature": 0.2,
    "top_p": 0.9,
    "parallel_tool_calls": False,
    "metadata": {"k": "v"},
    "user": "u1",
    "stream": True,
    "store": False,
    "include": ["reasoning.encrypted_content"],
    "truncation": "disabled",
    "service_tier": "auto",
    "prompt_cache_key": "pk",
    "safety_identifier": "sid",
}

CHAT_FROM_RESPONSES: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "https://x/img.png", "detail": "low"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,AAA", "filename": "a.pdf"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Lyon"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        {"role": "user", "content": "Thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Get weather",
                "parameters": SCHEMA,
                "strict": True,
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    },
    "reasoning_effort": "low",
    "max_output_tokens": 500,
    "temperature": 0.2,
    "top_p": 0.9,
    "parallel_tool_calls": False,
    "user": "u1",
    "stream": True,
    "stream_options": {"include_usage": True},
    "service_tier": "auto",
    "prompt_cache_key": "pk",
    "safety_identifier": "sid",
}


def test_responses_request_to_chat_golden() -> None:
    assert responses_request_to_chat(copy.deepcopy(RESPONSES_REQUEST)) == CHAT_FROM_RESPONSES


def test_responses_request_string_input_and_plain_settings() -> None:
    chat = responses_request_to_chat(
        {"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}
    )
    assert chat == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object"},
    }
    chat = responses_request_to_chat(
        {
            "model": "m",
            "input": "hi",
            "tools": [{"type": "function", "name": "f"}],
            "tool_choice": "required",
            "text": {"format": {"type": "text"}, "verbosity": "low"},
        }
    )
    assert chat["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert chat["tool_choice"] == "required"
    assert chat["response_format"] == {"type": "text"}
    assert chat["verbosity"] == "low"
    assert "stream_options" not in chat


def test_policy_effort_wins_over_reasoning_block() -> None:
    chat = responses_request_to_chat(
        {"model": "m", "input": "hi", "reasoning_effort": "high", "reasoning": {"effort": "low"}}
    )
    assert chat["reasoning_effort"] == "high"


def test_function_call_without_preceding_assistant_message_starts_one() -> None:
    chat = responses_request_to_chat(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
            ],
        }
    )
    assert chat["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}
            ],
        },
    ]


def test_allowed_tools_choice_both_ways() -> None:
    responses_choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "f"}],
    }
    tools = [{"type": "function", "name": "f"}]
    chat = responses_request_to_chat(
        {"model": "m", "input": "x", "tools": tools, "tool_choice": responses_choice}
    )
    assert chat["tool_choice"] == {
        "type": "allowed_tools",
        "allowed_tools": {
            "mode": "required",
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
    }
    back = chat_request_to_responses(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tool_choice": chat["tool_choice"],
        }
    )
    assert back["tool_choice"] == responses_choice


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "file_id": "file_1", "detail": "auto"}],
                    }
                ]
            },
            "input",
        ),
        ({"input": None}, "input"),
    ],
)
def test_responses_request_refuses_what_chat_cannot_carry(body: dict[str, Any], param: str) -> None:
    request = {"model": "m", "input": "hi", **body}
    with pytest.raises(BadRequest) as info:
        responses_request_to_chat(request)
    assert info.value.status == 400
    assert info.value.param == param
    assert param in info.value.message or param == "input"


def test_tool_settings_without_tools_are_not_sent_to_chat() -> None:
    chat = responses_request_to_chat(
        {
            "model": "m",
            "input": "hi",
            "tools": [],
            "tool_choice": "auto",
            "parallel_tool_calls": True,
        }
    )
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_responses_request_ignores_harmless_fields() -> None:
    chat = responses_request_to_chat(
        {
            "model": "m",
            "input": "hi",
            "store": False,
            "background": False,
            "truncation": "auto",
            "top_logprobs": 0,
            "max_tool_calls": 3,
        }
    )
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_request_round_trip_responses_chat_responses() -> None:
    request = {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_9", "output": "done"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "f",
                "description": "d",
                "parameters": SCHEMA,
                "strict": True,
            }
        ],
        "text": {"format": {"type": "json_schema", "name": "a", "schema": SCHEMA, "strict": False}},
        "reasoning": {"effort": "high"},
        "max_output_tokens": 10,
    }
    back = chat_request_to_responses(responses_request_to_chat(copy.deepcopy(request)))
    assert back == {**request, "store": False}


def test_responses_logprobs_request_becomes_chat_logprobs() -> None:
    from gateway.translate.responses import responses_request_to_chat

    body = {"model": "m", "input": "x", "top_logprobs": 2,
            "include": ["message.output_text.logprobs"]}  # fmt: skip
    out = responses_request_to_chat(body)
    assert out["logprobs"] is True and out["top_logprobs"] == 2
    assert "logprobs" not in responses_request_to_chat(
        {"model": "m", "input": "x", "top_logprobs": 2}
    )
