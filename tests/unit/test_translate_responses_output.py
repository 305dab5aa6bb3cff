"""Responses <-> chat whole answers and usage: golden both ways, SDK validation, round trip."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from gateway.errors import UpstreamError
from gateway.translate.responses import (
    chat_response_to_responses,
    chat_usage_to_responses,
    responses_response_to_chat,
    responses_usage_to_chat,
)

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "It is sunny.",
                "refusal": None,
                "reasoning_content": "Look it up first.",
                "tool_calls": [
                    {
                        "id": "call_A",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_B",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Lyon"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 12},
    },
    "service_tier": "default",
}

REQUEST_FOR_COMPLETION: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "input": "Weather?",
    "instructions": "Be brief.",
    "tools": [{"type": "function", "name": "weather", "parameters": SCHEMA, "strict": True}],
    "temperature": 0.5,
    "max_output_tokens": 200,
    "metadata": {"k": "v"},
}

RESPONSE_FROM_COMPLETION: dict[str, Any] = {
    "id": "resp_abc123",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "background": False,
    "error": None,
    "incomplete_details": None,
    "instructions": "Be brief.",
    "max_output_tokens": 200,
    "max_tool_calls": None,
    "model": "gpt-4o-mini-2024-07-18",
    "output": [
        {
            "id": "rs_abc123",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Look it up first."}],
        },
        {
            "id": "msg_abc123",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "It is sunny.", "annotations": [], "logprobs": []}
            ],
        },
        {
            "id": "fc_A",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_A",
            "name": "weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "id": "fc_B",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_B",
            "name": "weather",
            "arguments": '{"city":"Lyon"}',
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "prompt_cache_key": None,
    "reasoning": {"effort": None, "summary": None},
    "safety_identifier": None,
    "service_tier": "default",
    "store": False,
    "temperature": 0.5,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [
        {
            "type": "function",
            "name": "weather",
            "description": None,
            "parameters": SCHEMA,
            "strict": True,
        }
    ],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
        "output_tokens": 40,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 140,
    },
    "user": None,
    "metadata": {"k": "v"},
}


def test_chat_response_to_responses_golden_and_sdk_parses_it() -> None:
    response = chat_response_to_responses(copy.deepcopy(COMPLETION), REQUEST_FOR_COMPLETION)
    assert response == RESPONSE_FROM_COMPLETION
    parsed = Response.model_validate(response)  # validating, not lenient construction
    assert parsed.output_text == "It is sunny."
    assert parsed.usage is not None
    assert parsed.usage.output_tokens_details.reasoning_tokens == 12
    assert parsed.usage.input_tokens_details.cached_tokens == 64


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("length", "max_output_tokens"), ("content_filter", "content_filter")],
)
def test_cut_short_completion_is_incomplete(finish: str, reason: str) -> None:
    completion = {
        "id": "chatcmpl-x",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "partial"},
                "finish_reason": finish,
            }
        ],
    }
    response = chat_response_to_responses(completion, {"model": "m", "reasoning_effort": "low"})
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": reason}
    assert response["output"][0]["status"] == "incomplete"
    assert response["usage"] is None
    assert response["reasoning"] == {"effort": "low", "summary": None}
    assert Response.model_validate(response).output_text == "partial"


def test_refusal_and_empty_answers() -> None:
    refusal = chat_response_to_responses(
        {
            "id": "chatcmpl-r",
            "created": 1,
            "model": "m",
            "choices": [{"message": {"content": None, "refusal": "No."}, "finish_reason": "stop"}],
        },
        {},
    )
    assert refusal["output"] == [
        {
            "id": "msg_r",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "refusal", "refusal": "No."}],
        }
    ]
    empty = chat_response_to_responses(
        {
            "id": "chatcmpl-e",
            "created": 1,
            "model": "m",
            "choices": [{"message": {"content": ""}, "finish_reason": "stop"}],
        },
        {},
    )
    assert empty["output"][0]["content"] == [
        {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    ]
    assert Response.model_validate(empty).output_text == ""


CHAT_FROM_RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "It is sunny.",
                "refusal": None,
                "reasoning_content": "Look it up first.",
                "tool_calls": [
                    {
                        "id": "call_A",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_B",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Lyon"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 100,
        "completion_tokens": 40,
        "total_tokens": 140,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 12},
    },
    "service_tier": "default",
}


def test_responses_response_to_chat_golden_and_sdk_parses_it() -> None:
    completion = responses_response_to_chat(copy.deepcopy(RESPONSE_FROM_COMPLETION))
    assert completion == CHAT_FROM_RESPONSE
    parsed = ChatCompletion.model_validate(completion)
    assert parsed.choices[0].message.tool_calls is not None
    assert len(parsed.choices[0].message.tool_calls) == 2


def test_round_trip_completion_response_completion() -> None:
    back = responses_response_to_chat(chat_response_to_responses(copy.deepcopy(COMPLETION), {}))
    assert back == COMPLETION


def test_responses_response_to_chat_details() -> None:
    response = {
        "id": "resp_q",
        "created_at": 5.5,
        "model": "m",
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [
                    {"type": "summary_text", "text": "a"},
                    {"type": "summary_text", "text": "b"},
                ],
            },
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "incomplete",
                "content": [
                    {"type": "output_text", "text": "Hello ", "annotations": []},
                    {
                        "type": "output_text",
                        "text": "world",
                        "annotations": [
                            {
                                "type": "url_citation",
                                "start_index": 0,
                                "end_index": 5,
                                "url": "https://u",
                                "title": "t",
                            }
                        ],
                    },
                ],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "f",
                "arguments": "{",
            },
        ],
        "usage": None,
    }
    completion = responses_response_to_chat(response)
    choice = completion["choices"][0]
    assert completion["id"] == "chatcmpl-q"
    assert completion["created"] == 5
    assert choice["finish_reason"] == "length"  # cut short outranks the tool call
    assert choice["message"]["content"] == "Hello world"
    assert choice["message"]["reasoning_content"] == "a\n\nb"
    assert choice["message"]["annotations"] == [
        {
            "type": "url_citation",
            "url_citation": {"start_index": 6, "end_index": 11, "url": "https://u", "title": "t"},
        }
    ]
    assert completion["usage"] is None


def test_failed_response_raises_upstream_error() -> None:
    with pytest.raises(UpstreamError) as info:
        responses_response_to_chat(
            {
                "id": "resp_f",
                "status": "failed",
                "error": {"code": "server_error", "message": "boom"},
            }
        )
    assert info.value.message == "boom"
    assert info.value.code == "server_error"
    assert info.value.status == 502


def test_usage_helpers_both_ways() -> None:
    chat = {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    responses = chat_usage_to_responses(chat)
    assert responses == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 17,
    }
    assert responses_usage_to_chat(responses) == chat
    assert chat_usage_to_responses(None) is None
    usage = responses_usage_to_chat({"input_tokens": 2, "output_tokens": 3})
    assert usage is not None and usage["total_tokens"] == 5
