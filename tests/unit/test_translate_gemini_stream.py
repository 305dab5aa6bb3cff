"""The Gemini stream state machine on realistic `:streamGenerateContent?alt=sse` chunks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.errors import GatewayError, UpstreamError
from gateway.translate.gemini import chat_to_generate_content
from gateway.translate.gemini_compat import decode_tool_call_id
from gateway.translate.gemini_stream import GeminiToChatStream

SIG = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgE="
TEXT_SIG = "EpQBCpEBAdHtim9sYXN0LXNpZ25hdHVyZQ=="


def _chunk(parts: list[dict[str, Any]], finish: str | None = None, **usage: int) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    meta = {"promptTokenCount": 50, "totalTokenCount": 50, **usage}
    return {"candidates": [cand], "usageMetadata": meta, "modelVersion": "gemini-3-flash-preview",
            "responseId": "r-42"}  # fmt: skip


# A thinking model answering with text, then calling two tools in parallel.
CHUNKS = [
    _chunk([{"text": "**Planning** the lookup", "thought": True}]),
    _chunk([{"text": "Checking the "}]),
    _chunk([{"text": "weather."}, {"text": "", "thoughtSignature": TEXT_SIG}]),
    _chunk([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]),
    _chunk([{"functionCall": {"name": "get_time", "args": {}}}], "STOP",
           candidatesTokenCount=20, thoughtsTokenCount=30, cachedContentTokenCount=10,
           totalTokenCount=100),
]  # fmt: skip


def _run(stream: GeminiToChatStream, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for chunk in chunks:
        out.extend(stream.feed(chunk))
    return out + stream.finish()


def test_stream_state_machine() -> None:
    stream = GeminiToChatStream("gemini:flash", include_thoughts=True, include_usage=True)
    out = _run(stream, CHUNKS)
    assert {c["id"] for c in out} == {"chatcmpl-r-42"}
    assert {c["object"] for c in out} == {"chat.completion.chunk"}
    assert {c["model"] for c in out} == {"gemini:flash"}
    assert len({c["created"] for c in out}) == 1
    deltas = [c["choices"][0]["delta"] for c in out if c["choices"]]
    assert deltas[0] == {"role": "assistant", "reasoning_content": "**Planning** the lookup"}
    assert deltas[1] == {"content": "Checking the "}
    assert deltas[2] == {"content": "weather.",
                         "extra_content": {"google": {"thought_signature": TEXT_SIG}}}  # fmt: skip
    assert sum("role" in d for d in deltas) == 1
    calls = deltas[3]["tool_calls"] + deltas[4]["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1, 2]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather", "get_time"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"}, {"city": "Rome"}, {}]  # fmt: skip
    assert all(c["type"] == "function" and c["id"].startswith("call_") for c in calls)
    assert decode_tool_call_id(calls[0]["id"])[1] == SIG
    assert calls[0]["extra_content"] == {"google": {"thought_signature": SIG}}
    assert decode_tool_call_id(calls[1]["id"])[1] is None
    # finish chunk, then the usage chunk
    finish, usage = out[-2], out[-1]
    assert finish["choices"] == [{"index": 0, "delta": {}, "logprobs": None,
                                  "finish_reason": "tool_calls"}]  # fmt: skip
    assert finish["usage"] is None
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 50, "completion_tokens": 50, "total_tokens": 100,
        "prompt_tokens_details": {"cached_tokens": 10},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }  # fmt: skip
    assert stream.usage == usage["usage"]
    # The streamed tool calls go back to Gemini with the signature on the first call.
    message = {
        "role": "assistant",
        "content": "Checking the weather.",
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": c["function"]} for c in calls
        ],
    }
    body = {"messages": [{"role": "user", "content": "q"}, message]}
    parts = chat_to_generate_content(body)["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == [None, SIG, None, None]


def test_stream_hides_thoughts_and_usage_when_not_asked() -> None:
    stream = GeminiToChatStream("m", include_thoughts=False, include_usage=False)
    out = _run(stream, CHUNKS)
    deltas = [c["choices"][0]["delta"] for c in out]
    assert deltas[0] == {"role": "assistant", "content": "Checking the "}
    assert not any("reasoning_content" in d for d in deltas)
    assert all("usage" not in c for c in out)
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert stream.usage is not None and stream.usage["completion_tokens"] == 50


def test_stream_text_only_length_and_two_candidates() -> None:
    stream = GeminiToChatStream("m", include_thoughts=False, include_usage=False)
    chunks: list[dict[str, Any]] = [
        {"candidates": [{"content": {"parts": [{"text": "A1"}]}, "index": 0},
                        {"content": {"parts": [{"text": "B1"}]}, "index": 1}]},
        {"candidates": [{"content": {"parts": [{"text": "A2"}]}, "finishReason": "MAX_TOKENS", "index": 0},
                        {"content": {"parts": [{"text": "B2"}]}, "finishReason": "SAFETY", "index": 1}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4}},
    ]  # fmt: skip
    out = _run(stream, chunks)
    by_index: dict[int, str] = {}
    for chunk in out:
        for choice in chunk["choices"]:
            by_index[choice["index"]] = by_index.get(choice["index"], "") + choice["delta"].get(
                "content", ""
            )
    assert by_index == {0: "A1A2", 1: "B1B2"}
    finishes = {c["choices"][0]["index"]: c["choices"][0]["finish_reason"] for c in out[-2:]}
    assert finishes == {0: "length", 1: "content_filter"}


def test_stream_blocked_prompt() -> None:
    stream = GeminiToChatStream("m", include_thoughts=False, include_usage=True)
    out = _run(stream, [{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                         "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}])  # fmt: skip
    assert out[0]["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                  "logprobs": None, "finish_reason": "content_filter"}]  # fmt: skip
    assert out[1]["usage"]["prompt_tokens"] == 7


def test_stream_error_object_raises_mapped_error() -> None:
    stream = GeminiToChatStream("m", include_thoughts=False, include_usage=False)
    stream.feed(_chunk([{"text": "partial"}]))
    error = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    with pytest.raises(GatewayError) as info:
        stream.feed(error)
    assert info.value.status == 429
    assert info.value.code == "resource_exhausted"
    assert info.value.headers == {"retry-after": "7"}
    assert "exhausted" in info.value.message


def test_stream_cut_short_is_an_error() -> None:
    stream = GeminiToChatStream("m", include_thoughts=False, include_usage=True)
    stream.feed(_chunk([{"text": "partial"}]))
    with pytest.raises(UpstreamError):
        stream.finish()
