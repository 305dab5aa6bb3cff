"""Issue 14's wire-fidelity fixes, one by one (the conformance suite checks them against
OpenAI's published schemas end to end; these pin the translators' own behaviour)."""

from __future__ import annotations

from typing import Any

from gateway.policy import apply_policy
from gateway.registry.schema import ModelEntry, ProviderConfig
from gateway.registry.snapshot import Model
from gateway.translate.emulate import response_to_events
from gateway.translate.gemini import generate_content_to_chat
from gateway.translate.responses import (
    chat_response_to_responses,
    responses_response_to_chat,
)
from gateway.translate.responses_chat_stream import ResponsesToChatStream
from gateway.translate.responses_stream import ChatToResponsesStream

GEMINI = ProviderConfig(kind="gemini", base_url="http://x/v1beta", api_key_env="G")
LOGPROBS = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
             "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}]}]  # fmt: skip


def _chunk(
    delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    return {"id": "chatcmpl-x1", "object": "chat.completion.chunk", "created": 1, "model": "up-model",
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}  # fmt: skip


def test_gemini_native_message_has_a_null_refusal_also_when_blocked() -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}]}
    assert generate_content_to_chat(answer, "m", False)["choices"][0]["message"]["refusal"] is None
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}}
    assert generate_content_to_chat(blocked, "m", False)["choices"][0]["message"]["refusal"] is None


def test_bridged_response_echoes_function_tools_with_the_required_fields() -> None:
    request = {"tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}
    completion = {
        "id": "chatcmpl-1",
        "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
    }
    tool = chat_response_to_responses(completion, request)["tools"][0]
    assert tool == {"type": "function", "name": "f", "description": None,
                    "parameters": {"type": "object"}, "strict": False}  # fmt: skip
    no_params = chat_response_to_responses(
        completion, {"tools": [{"type": "function", "name": "g"}]}
    )
    assert no_params["tools"][0]["parameters"] is None and no_params["tools"][0]["strict"] is False


def test_arguments_done_event_names_the_function_live_and_replayed() -> None:
    stream = ChatToResponsesStream({}, "m")
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    events = stream.feed(_chunk({"tool_calls": [call]})) + stream.feed(_chunk({}, "tool_calls"))
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [e["name"] for e in done] == ["f"]
    replayed = response_to_events(
        {
            "status": "completed",
            "output": [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "g",
                    "arguments": "{}",
                }
            ],
        }
    )
    assert [e["name"] for e in replayed if e["type"].endswith("arguments.done")] == ["g"]


def test_chat_client_on_a_responses_model_gets_no_null_system_fingerprint() -> None:
    resp = {"id": "resp_1", "status": "completed", "model": "m", "output": []}
    assert "system_fingerprint" not in responses_response_to_chat(resp)


def test_reasoning_summary_turns_gemini_thoughts_on() -> None:
    entry = ModelEntry.model_validate(
        {"provider": "gemini", "model": "m", "endpoint": "gemini_sdk"}
    )
    model = Model("g:m", entry, "gemini", GEMINI)
    asked = apply_policy(
        "responses", {"model": "x", "input": "hi", "reasoning": {"summary": "auto"}}, model
    )
    assert asked.include_thoughts and asked.params["include_thoughts"] is True
    plain = apply_policy("responses", {"model": "x", "input": "hi"}, model)
    assert not plain.include_thoughts and "include_thoughts" not in plain.params


def test_streamed_model_is_the_one_the_upstream_names() -> None:
    events = ChatToResponsesStream({}, "asked-for").feed(_chunk({"content": "Hi"}))
    assert events[0]["response"]["model"] == "up-model"
    chunks = ResponsesToChatStream("asked-for", False).feed(
        {
            "type": "response.created",
            "response": {"id": "resp_1", "model": "up-2", "status": "in_progress"},
        }
    )
    assert chunks[0]["model"] == "up-2"


def test_logprobs_cross_both_ways_whole_and_streamed() -> None:
    completion = {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [
            {
                "message": {"content": "Hi"},
                "logprobs": {"content": LOGPROBS, "refusal": None},
                "finish_reason": "stop",
            }
        ],
    }
    response = chat_response_to_responses(completion, {})
    assert response["output"][0]["content"][0]["logprobs"] == LOGPROBS
    back = responses_response_to_chat(response)
    assert back["choices"][0]["logprobs"] == {"content": LOGPROBS, "refusal": None}

    stream = ChatToResponsesStream({}, "m")
    events = (
        stream.feed(_chunk({"content": "Hi"}, logprobs={"content": LOGPROBS})) + stream.finish()
    )
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert delta["logprobs"] == [{"token": "Hi", "logprob": -0.1,
                                  "top_logprobs": [{"token": "Hi", "logprob": -0.1}]}]  # fmt: skip
    assert events[-1]["response"]["output"][0]["content"][0]["logprobs"] == LOGPROBS
    chat = ResponsesToChatStream("m", False)
    chunks = [c for e in events for c in chat.feed(e)]
    with_logprobs = [c["choices"][0]["logprobs"] for c in chunks if c["choices"][0]["logprobs"]]
    assert with_logprobs == [{"content": LOGPROBS, "refusal": None}]


def test_annotations_are_announced_live_and_replayed() -> None:
    citation = {"type": "url_citation",
                "url_citation": {"url": "https://e.x", "title": "E", "start_index": 0, "end_index": 2}}  # fmt: skip
    stream = ChatToResponsesStream({}, "m")
    events = stream.feed(_chunk({"content": "Hi"})) + stream.feed(
        _chunk({"annotations": [citation]})
    )
    events += stream.finish()
    added = [e for e in events if e["type"] == "response.output_text.annotation.added"]
    flat = {
        "type": "url_citation",
        "url": "https://e.x",
        "title": "E",
        "start_index": 0,
        "end_index": 2,
    }
    assert [(e["annotation_index"], e["annotation"]) for e in added] == [(0, flat)]
    replayed = response_to_events(events[-1]["response"])
    assert [e["annotation"] for e in replayed if e["type"].endswith("annotation.added")] == [flat]
