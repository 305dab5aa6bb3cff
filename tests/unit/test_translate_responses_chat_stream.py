"""Responses events -> chat chunks, checked against the official `openai` SDK's stream parsing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.errors import UpstreamError
from gateway.translate.responses import responses_response_to_chat
from gateway.translate.responses_stream import ResponsesToChatStream
from tests.unit.responses_sdk import normal_completion, sdk_final_completion
from tests.unit.test_translate_responses_stream import CHUNKS, COMPLETION, run_chat_stream

_RESPONSE_BASE: dict[str, Any] = {
    "id": "resp_r1",
    "object": "response",
    "created_at": 1700000100,
    "model": "gpt-5-mini",
}
_REASONING = {
    "id": "rs_1",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "Plan"}, {"type": "summary_text", "text": "Act"}],
}
_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
}
_CALL = {
    "id": "fc_1",
    "type": "function_call",
    "status": "completed",
    "call_id": "call_1",
    "name": "lookup",
    "arguments": '{"q":"x"}',
}
_FINAL = {
    **_RESPONSE_BASE,
    "status": "completed",
    "output": [_REASONING, _MESSAGE, _CALL],
    "usage": {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 8},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 16},
        "total_tokens": 50,
    },
}


def _numbered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def _summary(kind: str, index: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": f"response.reasoning_summary_{kind}",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": index,
        **fields,
    }


def _text(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": f"response.{kind}",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        **fields,
    }


def _args(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": f"response.function_call_arguments.{kind}",
        "item_id": "fc_1",
        "output_index": 2,
        **fields,
    }


RESPONSE_EVENTS = _numbered(
    [
        {
            "type": "response.created",
            "response": {**_RESPONSE_BASE, "status": "in_progress", "output": []},
        },
        {
            "type": "response.in_progress",
            "response": {**_RESPONSE_BASE, "status": "in_progress", "output": []},
        },
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**_REASONING, "summary": []},
        },
        _summary("part.added", 0, part={"type": "summary_text", "text": ""}),
        _summary("text.delta", 0, delta="Plan"),
        _summary("text.done", 0, text="Plan"),
        _summary("part.done", 0, part={"type": "summary_text", "text": "Plan"}),
        _summary("part.added", 1, part={"type": "summary_text", "text": ""}),
        _summary("text.delta", 1, delta="Act"),
        _summary("text.done", 1, text="Act"),
        _summary("part.done", 1, part={"type": "summary_text", "text": "Act"}),
        {"type": "response.output_item.done", "output_index": 0, "item": _REASONING},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**_MESSAGE, "status": "in_progress", "content": []},
        },
        _text("content_part.added", part={"type": "output_text", "text": "", "annotations": []}),
        _text("output_text.delta", delta="Hel", logprobs=[]),
        _text("output_text.delta", delta="lo", logprobs=[]),
        _text("output_text.done", text="Hello", logprobs=[]),
        _text("content_part.done", part=_MESSAGE["content"][0]),
        {"type": "response.output_item.done", "output_index": 1, "item": _MESSAGE},
        {
            "type": "response.output_item.added",
            "output_index": 2,
            "item": {**_CALL, "status": "in_progress", "arguments": ""},
        },
        _args("delta", delta='{"q":'),
        _args("delta", delta='"x"}'),
        _args("done", arguments='{"q":"x"}'),
        {"type": "response.output_item.done", "output_index": 2, "item": _CALL},
        {"type": "response.completed", "response": _FINAL},
    ]
)


def run_responses_stream(
    events: list[dict[str, Any]], include_usage: bool = True
) -> list[dict[str, Any]]:
    stream = ResponsesToChatStream("client-model", include_usage)
    chunks: list[dict[str, Any]] = []
    for event in events:
        chunks += stream.feed(copy.deepcopy(event))
    chunks += stream.finish()
    return chunks


def test_responses_to_chat_stream_golden() -> None:
    chunks = run_responses_stream(RESPONSE_EVENTS)
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}
    assert {c["created"] for c in chunks} == {1700000100}
    # The model the upstream named, as in the unstreamed translation (not the one asked for).
    assert {c["model"] for c in chunks} == {"gpt-5-mini"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    steps = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks[:-1]]
    assert steps == [
        ({"role": "assistant"}, None),
        ({"reasoning_content": "Plan"}, None),
        ({"reasoning_content": "\n\nAct"}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 20,
        "completion_tokens": 30,
        "total_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"reasoning_tokens": 16},
    }


def test_responses_to_chat_stream_through_the_sdk() -> None:
    final = sdk_final_completion(run_responses_stream(RESPONSE_EVENTS))
    expected = responses_response_to_chat(_FINAL)
    assert normal_completion(final) == normal_completion(expected)
    # reasoning_content is the gateway's extra field: the SDK keeps it, its types do not name it.
    assert final.choices[0].message.reasoning_content == "Plan\n\nAct"  # type: ignore[attr-defined]
    assert final.usage is not None and final.usage.completion_tokens_details is not None
    assert final.usage.completion_tokens_details.reasoning_tokens == 16


def test_responses_to_chat_stream_without_usage() -> None:
    chunks = run_responses_stream(RESPONSE_EVENTS, include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all("usage" not in c for c in chunks)


def test_done_events_fill_in_what_deltas_left_out() -> None:
    """An upstream that sends whole items and no deltas still reaches the client whole."""
    events = _numbered(
        [
            RESPONSE_EVENTS[0],
            {"type": "response.output_item.done", "output_index": 0, "item": _REASONING},
            {"type": "response.output_item.done", "output_index": 1, "item": _MESSAGE},
            {"type": "response.output_item.done", "output_index": 2, "item": _CALL},
            {"type": "response.completed", "response": _FINAL},
        ]
    )
    final = sdk_final_completion(run_responses_stream(events))
    expected = responses_response_to_chat(_FINAL)
    assert normal_completion(final) == normal_completion(expected)


def test_incomplete_response_finishes_with_length() -> None:
    events = _numbered(
        [
            RESPONSE_EVENTS[0],
            {**RESPONSE_EVENTS[12]},
            _text("output_text.delta", delta="Hel", logprobs=[]),
            {
                "type": "response.incomplete",
                "response": {
                    **_RESPONSE_BASE,
                    "status": "incomplete",
                    "incomplete_details": {"reason": "max_output_tokens"},
                },
            },
        ]
    )
    chunks = run_responses_stream(events)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_failed_and_error_events_raise() -> None:
    stream = ResponsesToChatStream("m", True)
    stream.feed(RESPONSE_EVENTS[0])
    with pytest.raises(UpstreamError, match="model crashed") as info:
        stream.feed(
            {
                "type": "response.failed",
                "response": {
                    **_RESPONSE_BASE,
                    "status": "failed",
                    "error": {"code": "server_error", "message": "model crashed"},
                },
            }
        )
    assert info.value.code == "server_error"
    with pytest.raises(UpstreamError, match="slow down") as info:
        ResponsesToChatStream("m", True).feed(
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None}
        )
    assert info.value.code == "rate_limit_exceeded"


def test_stream_that_stops_early_is_an_error_not_a_success() -> None:
    stream = ResponsesToChatStream("m", True)
    for event in RESPONSE_EVENTS[:10]:
        stream.feed(event)
    with pytest.raises(UpstreamError):
        stream.finish()


def test_chat_to_responses_to_chat_loop_keeps_the_answer() -> None:
    """chat upstream -> Responses client, read back as chat: nothing lost, nothing added."""
    events = run_chat_stream(CHUNKS)
    chunks = run_responses_stream(events)
    final = sdk_final_completion(chunks)
    assert len({c["id"] for c in chunks}) == 1
    expected = copy.deepcopy(COMPLETION)
    expected["id"] = "chatcmpl-s1"
    assert normal_completion(final) == normal_completion(expected)


def test_an_unfinished_stream_is_truncated_with_the_one_reason() -> None:
    stream = ResponsesToChatStream("gpt-5", include_usage=True)
    with pytest.raises(UpstreamError) as info:
        stream.finish()
    assert (info.value.code, info.value.reason) == ("upstream_stream_truncated", "stream_truncated")
