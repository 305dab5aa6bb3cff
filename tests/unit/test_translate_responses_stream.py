"""Chat chunks -> Responses events, checked against the official `openai` SDK's stream parsing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openai.types.responses import ParsedResponseOutputMessage, ResponseOutputRefusal

from gateway.errors import UpstreamError
from gateway.translate.responses import chat_response_to_responses
from gateway.translate.responses_stream import ChatToResponsesStream
from gateway.translate.sse import event_frame
from tests.unit.responses_sdk import (
    check_event_sequence,
    normal_response,
    sdk_client,
    sdk_final_response,
)

REQUEST: dict[str, Any] = {
    "model": "gpt-x",
    "input": "Weather in Paris and Lyon?",
    "tools": [
        {
            "type": "function",
            "name": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": False,
        }
    ],
    "stream": True,
}


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "created": 1700000001,
        "model": "gpt-x",
        "choices": choices,
        **extra,
    }


USAGE = {
    "prompt_tokens": 50,
    "completion_tokens": 30,
    "total_tokens": 80,
    "prompt_tokens_details": {"cached_tokens": 32},
    "completion_tokens_details": {"reasoning_tokens": 9},
}

CHUNKS: list[dict[str, Any]] = [
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"reasoning_content": "Think"}),
    chunk({"reasoning_content": "ing."}),
    chunk({"content": "It is "}),
    chunk({"content": "sunny."}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_A",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
    # a second call starts before the first one's arguments are finished
    chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_B",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Lyon"}'},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    chunk({}, "tool_calls"),
    chunk(None, usage=USAGE),
]

COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-s1",
    "object": "chat.completion",
    "created": 1700000001,
    "model": "gpt-x",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "It is sunny.",
                "refusal": None,
                "reasoning_content": "Thinking.",
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
    "usage": USAGE,
}


def run_chat_stream(
    chunks: list[dict[str, Any]], request: dict[str, Any] = REQUEST
) -> list[dict[str, Any]]:
    stream = ChatToResponsesStream(request, "gpt-x")
    events: list[dict[str, Any]] = []
    for item in chunks:
        events += stream.feed(copy.deepcopy(item))
    events += stream.finish()
    assert stream.finish() == []
    return events


def test_chat_to_responses_stream_full_sequence() -> None:
    events = run_chat_stream(CHUNKS)
    check_event_sequence(events)
    types = [e["type"] for e in events]
    assert types[:7] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
    ]
    assert types.count("response.function_call_arguments.delta") == 3
    assert types[-1] == "response.completed"
    created = events[0]["response"]
    assert (
        created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    )
    assert created["id"] == events[-1]["response"]["id"] == "resp_s1"
    # the streamed Response is exactly the unstreamed translation of the same answer
    assert events[-1]["response"] == chat_response_to_responses(COMPLETION, REQUEST)


def test_chat_to_responses_stream_through_the_sdk() -> None:
    events = run_chat_stream(CHUNKS)
    final = sdk_final_response(events, tools=REQUEST["tools"])
    assert final.output_text == "It is sunny."
    assert final.usage is not None
    assert final.usage.output_tokens_details.reasoning_tokens == 9
    assert final.usage.input_tokens_details.cached_tokens == 32
    assert [item.type for item in final.output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert normal_response(final) == normal_response(
        chat_response_to_responses(COMPLETION, REQUEST)
    )


def test_chat_to_responses_stream_cut_short_is_incomplete() -> None:
    events = run_chat_stream(
        [
            chunk({"role": "assistant", "content": "Par"}),
            chunk({}, "length"),
            chunk(None, usage=USAGE),
        ]
    )
    check_event_sequence(events)
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"
    assert final["response"]["usage"]["output_tokens"] == 30
    body = b"".join(event_frame(e) for e in events)
    with sdk_client(body).responses.stream(model="m", input="x") as stream:
        last = list(stream)[-1]
    assert last.type == "response.incomplete"
    assert last.response.output_text == "Par"


def test_chat_to_responses_stream_empty_answer_still_has_a_message() -> None:
    events = run_chat_stream([chunk({"role": "assistant", "content": ""}), chunk({}, "stop")])
    check_event_sequence(events)
    expected = chat_response_to_responses(
        {
            "id": "chatcmpl-s1",
            "created": 1700000001,
            "model": "gpt-x",
            "choices": [{"message": {"content": ""}, "finish_reason": "stop"}],
        },
        REQUEST,
    )
    assert events[-1]["response"] == expected
    assert sdk_final_response(events).output_text == ""


def test_chat_to_responses_stream_with_no_chunks_at_all() -> None:
    events = run_chat_stream([])
    check_event_sequence(events)
    assert events[-1]["response"]["output"][0]["type"] == "message"


def test_tool_calls_without_index_are_told_apart_by_id() -> None:
    whole = [
        chunk(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "a", "arguments": "{}"},
                    }
                ],
            }
        ),
        chunk(
            {
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "b", "arguments": '{"x":1}'},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
    ]
    events = run_chat_stream(whole)
    check_event_sequence(events)
    output = events[-1]["response"]["output"]
    assert [(o["id"], o["name"], o["arguments"]) for o in output] == [
        ("fc_1", "a", "{}"),
        ("fc_2", "b", '{"x":1}'),
    ]


def test_refusal_stream() -> None:
    events = run_chat_stream(
        [
            chunk({"role": "assistant", "refusal": "I can"}),
            chunk({"refusal": "not."}),
            chunk({}, "stop"),
        ]
    )
    check_event_sequence(events)
    assert "response.refusal.delta" in [e["type"] for e in events]
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I cannot."}
    ]
    final = sdk_final_response(events)
    message = final.output[0]
    assert isinstance(message, ParsedResponseOutputMessage)
    assert isinstance(message.content[0], ResponseOutputRefusal)
    assert message.content[0].refusal == "I cannot."


def test_chat_stream_error_chunk_raises() -> None:
    stream = ChatToResponsesStream(REQUEST, "gpt-x")
    stream.feed(chunk({"content": "a"}))
    with pytest.raises(UpstreamError, match="overloaded"):
        stream.feed({"error": {"message": "overloaded"}})
