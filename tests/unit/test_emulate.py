"""Streams made from whole answers must be what a real stream of the same answer is."""

from __future__ import annotations

import copy
from typing import Any

from gateway.translate.emulate import completion_to_chunks, response_to_events
from gateway.translate.responses import chat_response_to_responses
from gateway.translate.responses_stream import ChatToResponsesStream
from gateway.translate.sse import event_frame
from tests.unit.responses_sdk import (
    check_event_sequence,
    normal_completion,
    normal_response,
    sdk_client,
    sdk_final_completion,
    sdk_final_response,
)
from tests.unit.test_translate_responses_output import (
    COMPLETION,
    REQUEST_FOR_COMPLETION,
    RESPONSE_FROM_COMPLETION,
)

SMALL: dict[str, Any] = {
    "id": "chatcmpl-z",
    "object": "chat.completion",
    "created": 42,
    "model": "m",
    "system_fingerprint": "fp_1",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


def test_completion_to_chunks_golden() -> None:
    base = {
        "id": "chatcmpl-z",
        "object": "chat.completion.chunk",
        "created": 42,
        "model": "m",
        "system_fingerprint": "fp_1",
        "usage": None,
    }

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    assert completion_to_chunks(SMALL, include_usage=True) == [
        choice({"role": "assistant"}),
        choice(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        choice({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}),
        choice({}, "tool_calls"),
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        },
    ]


def test_completion_to_chunks_rebuilds_the_completion_in_the_sdk() -> None:
    for completion in (COMPLETION, SMALL):
        final = sdk_final_completion(
            completion_to_chunks(copy.deepcopy(completion), include_usage=True)
        )
        assert normal_completion(final) == normal_completion(completion)


def test_completion_to_chunks_without_usage() -> None:
    chunks = completion_to_chunks(COMPLETION, include_usage=False)
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_completion_to_chunks_with_several_choices() -> None:
    completion = copy.deepcopy(SMALL)
    completion["choices"] = [
        {"index": 0, "message": {"role": "assistant", "content": "one"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "two"}, "finish_reason": "stop"},
    ]
    final = sdk_final_completion(completion_to_chunks(completion, include_usage=True))
    assert [(c.message.content, c.finish_reason) for c in final.choices] == [
        ("one", "stop"),
        ("two", "stop"),
    ]


def test_response_to_events_rebuilds_the_response_in_the_sdk() -> None:
    events = response_to_events(copy.deepcopy(RESPONSE_FROM_COMPLETION))
    check_event_sequence(events)
    assert events[-1]["response"] == RESPONSE_FROM_COMPLETION
    final = sdk_final_response(events, tools=REQUEST_FOR_COMPLETION["tools"])
    assert normal_response(final) == normal_response(RESPONSE_FROM_COMPLETION)
    assert final.output_text == "It is sunny."


def test_response_to_events_ends_the_way_the_response_did() -> None:
    incomplete = {
        **RESPONSE_FROM_COMPLETION,
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
    }
    events = response_to_events(incomplete)
    check_event_sequence(events)
    assert events[-1]["type"] == "response.incomplete"
    body = b"".join(event_frame(e) for e in events)
    with sdk_client(body).responses.stream(model="m", input="x") as stream:
        assert list(stream)[-1].type == "response.incomplete"
    failed = {
        **RESPONSE_FROM_COMPLETION,
        "status": "failed",
        "output": [],
        "error": {"code": "server_error", "message": "x"},
    }
    assert [e["type"] for e in response_to_events(failed)][-1] == "response.failed"


def test_emulated_and_live_streams_are_the_same_events() -> None:
    """A chat answer streamed live, and the same answer whole then emulated: identical frames."""
    completion = copy.deepcopy(COMPLETION)
    message = completion["choices"][0]["message"]
    message["tool_calls"] = message["tool_calls"][:1]
    live = ChatToResponsesStream(REQUEST_FOR_COMPLETION, completion["model"])
    events: list[dict[str, Any]] = []
    for chunk in completion_to_chunks(completion, include_usage=True):
        events += live.feed(chunk)
    events += live.finish()
    emulated = response_to_events(chat_response_to_responses(completion, REQUEST_FOR_COMPLETION))
    assert events == emulated
