"""Gemini's OpenAI-compatible surface: request rendering, thought splitting, usage."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.translate.gemini_compat import (
    CompatStreamFixer,
    compat_model_id,
    compat_request,
    compat_response,
    decode_tool_call_id,
    encode_tool_call_id,
    split_thoughts,
)

SIG = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgE="


def test_compat_model_id() -> None:
    assert compat_model_id("models/gemini-3-flash-preview") == "gemini-3-flash-preview"
    assert compat_model_id("gemini-2.5-flash") == "gemini-2.5-flash"


def test_compat_request_golden() -> None:
    encoded = encode_tool_call_id("function-call-1", SIG)
    body = {
        "model": "models/gemini-3-flash-preview",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "reasoning_content": "thought",
             "tool_calls": [{"id": encoded, "type": "function",
                             "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": encoded, "content": "ok"},
        ],
        "max_output_tokens": 1300,
        "thinking_level": "LOW",
        "include_thoughts": True,
        "reasoning_effort": "low",
        "temperature": 0.5,
        "stream": True,
    }  # fmt: skip
    assert compat_request(body) == {
        "model": "gemini-3-flash-preview",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "function-call-1", "type": "function",
                             "function": {"name": "f", "arguments": "{}"},
                             "extra_content": {"google": {"thought_signature": SIG}}}]},
            {"role": "tool", "tool_call_id": "function-call-1", "content": "ok"},
        ],
        "max_tokens": 1300,
        "temperature": 0.5,
        "stream": True,
        "extra_body": {"google": {"thinking_config": {"thinking_level": "low",
                                                      "include_thoughts": True}}},
    }  # fmt: skip
    budget = compat_request({"model": "gemini-2.5-flash", "messages": [], "thinking_budget": 0})
    assert budget["extra_body"] == {"google": {"thinking_config": {"thinking_budget": 0}}}
    shown = compat_request({"messages": [], "reasoning_effort": "low", "include_thoughts": True})
    assert shown == {"messages": [], "reasoning_effort": "low",
                     "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}}  # fmt: skip
    plain = compat_request({"model": "gemini-2.5-flash", "messages": [], "reasoning_effort": "low"})
    assert plain == {"model": "gemini-2.5-flash", "messages": [], "reasoning_effort": "low"}


def _completion(content: str | None, usage: dict[str, Any], **message: Any) -> dict[str, Any]:
    return {
        "id": "x", "object": "chat.completion", "created": 1, "model": "gemini-2.5-flash",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content, **message}}],
        "usage": usage,
    }  # fmt: skip


def test_compat_response_thoughts_and_usage() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 120}
    completion = _completion(
        "<thought>\nLet me think.\n2 + 6 = 8\n</thought>\n\nThe answer is 8.", usage
    )
    out = compat_response(completion, include_thoughts=True)
    message = out["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "The answer is 8.", "refusal": None,
                       "reasoning_content": "Let me think.\n2 + 6 = 8"}  # fmt: skip
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": 108, "total_tokens": 120,
                            "completion_tokens_details": {"reasoning_tokens": 100}}  # fmt: skip
    hidden = compat_response(completion, include_thoughts=False)["choices"][0]["message"]
    assert hidden == {"role": "assistant", "content": "The answer is 8.", "refusal": None}
    assert completion["choices"][0]["message"]["content"].startswith("<thought>")  # not mutated


def test_compat_usage_variants() -> None:
    consistent = {"prompt_tokens": 5, "completion_tokens": 50, "total_tokens": 55,
                  "completion_tokens_details": {"reasoning_tokens": 40}}  # fmt: skip
    assert compat_response(_completion("a", consistent), False)["usage"] == consistent
    reported = {"prompt_tokens": 5, "completion_tokens": 10, "total_tokens": 55,
                "completion_tokens_details": {"reasoning_tokens": 40}}  # fmt: skip
    fixed = compat_response(_completion("a", reported), False)["usage"]
    assert fixed["completion_tokens"] == 50
    assert fixed["completion_tokens_details"] == {"reasoning_tokens": 40}
    no_thinking = {"prompt_tokens": 5, "completion_tokens": 10, "total_tokens": 15}
    fixed = compat_response(_completion("a", no_thinking), False)["usage"]
    assert fixed["completion_tokens"] == 10
    assert fixed["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_compat_response_signs_tool_call_ids() -> None:
    call = {"id": "function-call-9", "type": "function", "function": {"name": "f", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": SIG}}}  # fmt: skip
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    out = compat_response(_completion(None, usage, tool_calls=[call]), include_thoughts=False)
    out_call = out["choices"][0]["message"]["tool_calls"][0]
    assert decode_tool_call_id(out_call["id"]) == ("function-call-9", SIG)
    assert re.match(r"^[A-Za-z0-9_-]+$", out_call["id"])
    assert call["id"] == "function-call-9"  # the input is left alone


def test_split_thoughts_unterminated() -> None:
    assert split_thoughts("<thought>cut off by max tok") == ("", "cut off by max tok")
    assert split_thoughts("no thoughts") == ("no thoughts", "")


CONTENT = "<thought>\nPlan: add <b>2</b> and 6 </th\n</thought>\n\nThe answer is 8 < 9 <thought"
ANSWER = "The answer is 8 < 9 <thought"  # a trailing partial open tag is answer text
REASONING = "Plan: add <b>2</b> and 6 </th\n"


def _stream(pieces: list[str], include_thoughts: bool) -> tuple[str, str, list[dict[str, Any]]]:
    fixer = CompatStreamFixer(include_thoughts)
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "g"}
    out: list[dict[str, Any]] = []
    for n, piece in enumerate(pieces):
        delta = {"content": piece, **({"role": "assistant"} if n == 0 else {})}
        out += fixer.feed(
            {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        )
    out += fixer.feed({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    answer = "".join(c["choices"][0]["delta"].get("content", "") for c in out if c["choices"])
    reasoning = "".join(
        c["choices"][0]["delta"].get("reasoning_content", "") for c in out if c["choices"]
    )
    return answer, reasoning, out


@pytest.mark.parametrize("include_thoughts", [True, False])
def test_stream_fixer_splits_thoughts_at_every_boundary(include_thoughts: bool) -> None:
    expected_reasoning = REASONING if include_thoughts else ""
    for cut in range(1, len(CONTENT)):
        for cut2 in (cut + 1, cut + 4, cut + 11):
            pieces = [CONTENT[:cut], CONTENT[cut:cut2], CONTENT[cut2:]]
            answer, reasoning, _ = _stream([p for p in pieces if p], include_thoughts)
            assert (answer, reasoning) == (ANSWER, expected_reasoning), pieces


def test_stream_fixer_holds_back_only_a_partial_tag() -> None:
    fixer = CompatStreamFixer(include_thoughts=True)
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hello <tho"}, "finish_reason": None}]}
    out = fixer.feed(chunk)
    assert out[0]["choices"][0]["delta"] == {"content": "Hello "}
    chunk = {"choices": [{"index": 0, "delta": {"content": "se days"}, "finish_reason": None}]}
    assert fixer.feed(chunk)[0]["choices"][0]["delta"] == {"content": "<those days"}


def test_stream_fixer_usage_and_signatures() -> None:
    fixer = CompatStreamFixer(include_thoughts=False)
    call = {"index": 0, "id": "function-call-3", "type": "function",
            "function": {"name": "f", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": SIG}}}  # fmt: skip
    out = fixer.feed(
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}
    )
    assert decode_tool_call_id(out[0]["choices"][0]["delta"]["tool_calls"][0]["id"]) == (
        "function-call-3", SIG)  # fmt: skip
    usage_chunk = {
        "choices": [],
        "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 30},
    }
    out = fixer.feed(usage_chunk)
    assert out[0]["usage"] == {"prompt_tokens": 4, "completion_tokens": 26, "total_tokens": 30,
                               "completion_tokens_details": {"reasoning_tokens": 20}}  # fmt: skip
    # A chunk whose only content was a hidden thought disappears.
    thought_only = {
        "choices": [{"index": 0, "delta": {"content": "<thought>hmm"}, "finish_reason": None}]
    }
    assert fixer.feed(thought_only) == []
