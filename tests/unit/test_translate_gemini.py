"""Golden tests: internal chat <-> Gemini generateContent, field for field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import BadRequest
from gateway.translate.gemini import (
    chat_to_generate_content,
    gemini_schema,
    gemini_usage_to_chat,
    generate_content_to_chat,
)

SIG_A = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgE="  # a realistic signature


def test_request_golden() -> None:
    body = {
        "model": "gemini-3-flash-preview",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this, and the weather in Paris?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://ex.com/a/cat.WEBP?s=1"}},
                    {"type": "image_url", "image_url": "https://ex.com/render"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_0123456789abcdef01234567", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_76543210fedcba9876543210", "type": "function",
                     "function": {"name": "get_time", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_0123456789abcdef01234567",
             "content": "{\"temp_c\": 21}"},
            {"role": "tool", "tool_call_id": "call_76543210fedcba9876543210", "content": "14:05"},
            {"role": "assistant", "content": "It is 21C."},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather", "description": "Weather for a city", "strict": True,
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                    "properties": {"city": {"type": "string", "default": "Paris"}},
                    "required": ["city"], "additionalProperties": False}}},
            {"type": "function", "function": {"name": "get_time",
                                              "parameters": {"type": "object", "properties": {}}}},
        ],
        "tool_choice": "required",
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "answer", "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}},
                       "additionalProperties": False}}},
        "stop": "END",
        "n": 1,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "max_output_tokens": 1024,
        "logprobs": True,
        "top_logprobs": 3,
        "thinking_level": "low",
        "include_thoughts": True,
        # OpenAI-only fields: dropped
        "user": "u-1", "parallel_tool_calls": True, "stream": True,
        "stream_options": {"include_usage": True}, "logit_bias": {"50256": -100},
        "metadata": {"k": "v"}, "store": False, "service_tier": "auto",
    }  # fmt: skip
    assert chat_to_generate_content(body) == {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Use metric units."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "What is this, and the weather in Paris?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/webp", "fileUri": "https://ex.com/a/cat.WEBP?s=1"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://ex.com/render"}},
            ]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"content": "14:05"}}},
            ]},
            {"role": "model", "parts": [{"text": "It is 21C."}]},
            {"role": "user", "parts": [{"text": "Thanks"}]},
        ],
        "tools": [{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather for a city", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            # mode ANY: never without parameters (googleapis/python-genai#981)
            {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {
            "temperature": 0.2, "topP": 0.9, "seed": 7, "presencePenalty": 0.1,
            "frequencyPenalty": 0.2, "candidateCount": 1, "maxOutputTokens": 1024,
            "stopSequences": ["END"], "responseLogprobs": True, "logprobs": 3,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "string"}},
                                   "additionalProperties": False},
            "thinkingConfig": {"thinkingLevel": "LOW", "includeThoughts": True},
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}},
         {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)  # fmt: skip
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f"}}]}  # fmt: skip
    assert chat_to_generate_content(body)["toolConfig"] == {"functionCallingConfig": config}


def test_generation_variants() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    assert chat_to_generate_content(base) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }
    out = chat_to_generate_content(
        {
            **base,
            "stop": ["a", "b"],
            "thinking_budget": 0,
            "response_format": {"type": "json_object"},
        }
    )
    assert out["generationConfig"] == {
        "stopSequences": ["a", "b"], "thinkingConfig": {"thinkingBudget": 0},
        "responseMimeType": "application/json",
    }  # fmt: skip
    out = chat_to_generate_content(
        {**base, "include_thoughts": False, "response_format": {"type": "text"}}
    )
    assert "generationConfig" not in out


def test_tool_results_non_object_and_named() -> None:
    body = {"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [
            {"id": "abc", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "abc", "content": [{"type": "text", "text": "[1, 2]"}]},
    ]}  # fmt: skip
    contents = chat_to_generate_content(body)["contents"]
    # "abc" is not one of our generated ids: it is Gemini's, so it goes back as `id`
    assert contents[1]["parts"] == [{"functionCall": {"name": "f", "args": {}, "id": "abc"}}]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"result": [1, 2]}, "id": "abc"}}
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "tool_call_id": "nope", "content": "1"}], "messages[0].tool_call_id"),
        ([{"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}],
         "messages[0].tool_calls[0].function.arguments"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}],
         "messages[0].content[0].image_url.url"),
        ([{"role": "user", "content": [{"type": "video", "video": {}}]}], "messages[0].content[0].type"),
        ([{"role": "function", "name": "f", "content": "1"}], "messages[0].role"),
        ([], "messages"),
    ],
)  # fmt: skip
def test_request_errors(messages: list[Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        chat_to_generate_content({"messages": messages})
    assert info.value.param == param
    assert info.value.status == 400


def test_schema_sanitizer() -> None:
    schema = {
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "title": "Unit"},
                  "Place": {"type": "object", "properties": {"name": {"type": "string"}},
                            "required": ["name", "ghost"], "additionalProperties": False}},
        "type": "object",
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "Temperature unit"},
            "place": {"allOf": [{"$ref": "#/$defs/Place"}], "default": None},
            "days": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 7}, {"type": "null"}]},
            "tags": {"type": ["array", "null"], "items": {"type": "string", "format": "uri"},
                     "maxItems": 3, "examples": [["a"]]},
            "when": {"type": "string", "format": "date-time", "pattern": "^2"},
            "mode": {"const": "fast"},
            "level": {"type": "integer", "enum": [1, 2]},
            "either": {"oneOf": [{"type": "string"}, {"type": "number", "format": "double"}]},
        },
        "required": ["unit"],
    }  # fmt: skip
    assert gemini_schema(schema, "p") == {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "title": "Unit", "description": "Temperature unit",
                     "enum": ["c", "f"]},
            "place": {"type": "object", "properties": {"name": {"type": "string"}},
                      "required": ["name"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7, "nullable": True},
            "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}, "nullable": True},
            "when": {"type": "string", "format": "date-time"},
            "mode": {"type": "string", "enum": ["fast"]},
            "level": {"type": "integer", "description": "Allowed values: 1, 2"},
            "either": {"anyOf": [{"type": "string"}, {"type": "number", "format": "double"}]},
        },
        "required": ["unit"],
    }  # fmt: skip


def test_schema_refs_that_cannot_be_inlined() -> None:
    recursive = {"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
                 "$ref": "#/$defs/Node"}  # fmt: skip
    with pytest.raises(BadRequest, match="recursive"):
        gemini_schema(recursive, "tools[0].function.parameters")
    with pytest.raises(BadRequest, match="cannot resolve"):
        gemini_schema({"$ref": "https://example.com/schema.json"}, "p")


# --------------------------------------------------------------------------- response


def _resp(parts: list[dict[str, Any]], finish: str = "STOP", **extra: Any) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish,
                        "index": 0, "safetyRatings": []}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 14},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
        **extra,
    }  # fmt: skip


def test_response_golden_with_thoughts() -> None:
    resp = _resp([
        {"text": "Thinking about **Paris**.", "thought": True},
        {"text": "It is "},
        {"text": "sunny.", "thoughtSignature": SIG_A},
    ])  # fmt: skip
    resp["usageMetadata"] = {"promptTokenCount": 100, "cachedContentTokenCount": 40,
                             "candidatesTokenCount": 5, "thoughtsTokenCount": 30,
                             "totalTokenCount": 135}  # fmt: skip
    out = generate_content_to_chat(resp, "gemini:flash", include_thoughts=True)
    assert out["id"] == "chatcmpl-resp-1"
    assert out["object"] == "chat.completion"
    assert out["model"] == "gemini:flash"
    assert isinstance(out["created"], int)
    assert out["choices"] == [{
        "index": 0,
        "message": {"role": "assistant", "content": "It is sunny.", "refusal": None,
                    "reasoning_content": "Thinking about **Paris**.",
                    "extra_content": {"google": {"thought_signature": SIG_A}}},
        "logprobs": None,
        "finish_reason": "stop",
    }]  # fmt: skip
    assert out["usage"] == {
        "prompt_tokens": 100, "completion_tokens": 35, "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }  # fmt: skip
    hidden = generate_content_to_chat(resp, "m", include_thoughts=False)
    assert "reasoning_content" not in hidden["choices"][0]["message"]


@pytest.mark.parametrize(
    ("reason", "calls", "expected"),
    [
        ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"), ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"), ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"), ("SPII", False, "content_filter"),
        ("IMAGE_SAFETY", False, "content_filter"), ("LANGUAGE", False, "stop"),
        ("OTHER", False, "stop"), ("MALFORMED_FUNCTION_CALL", False, "stop"),
        ("FINISH_REASON_UNSPECIFIED", False, "stop"),
    ],
)  # fmt: skip
def test_finish_reasons(reason: str, calls: bool, expected: str) -> None:
    parts = [{"functionCall": {"name": "f", "args": {}}}] if calls else [{"text": "x"}]
    out = generate_content_to_chat(_resp(parts, reason), "m", include_thoughts=False)
    assert out["choices"][0]["finish_reason"] == expected


def test_blocked_prompt() -> None:
    resp = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}}  # fmt: skip
    out = generate_content_to_chat(resp, "m", include_thoughts=False)
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "", "refusal": None},
                               "logprobs": None, "finish_reason": "content_filter"}]  # fmt: skip
    assert out["usage"]["prompt_tokens"] == 8
    assert out["usage"]["completion_tokens"] == 0


def test_multiple_candidates_and_logprobs() -> None:
    resp = {"candidates": [
        {"content": {"role": "model", "parts": [{"text": "A"}]}, "finishReason": "STOP", "index": 0,
         "logprobsResult": {
             "topCandidates": [{"candidates": [{"token": "A", "logProbability": -0.1},
                                               {"token": "B", "logProbability": -2.5}]}],
             "chosenCandidates": [{"token": "A", "logProbability": -0.1}]}},
        {"content": {"role": "model", "parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS",
         "index": 1},
    ]}  # fmt: skip
    out = generate_content_to_chat(resp, "m", include_thoughts=False)
    assert [c["message"]["content"] for c in out["choices"]] == ["A", "B"]
    assert [c["finish_reason"] for c in out["choices"]] == ["stop", "length"]
    assert out["choices"][0]["logprobs"] == {"refusal": None, "content": [{
        "token": "A", "logprob": -0.1, "bytes": [65],
        "top_logprobs": [{"token": "A", "logprob": -0.1, "bytes": [65]},
                         {"token": "B", "logprob": -2.5, "bytes": [66]}]}]}  # fmt: skip


def test_usage() -> None:
    assert gemini_usage_to_chat(None) == {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }  # fmt: skip
    # A grounded call: the search results are input billed on top of promptTokenCount.
    meta = {"promptTokenCount": 26, "toolUsePromptTokenCount": 12504, "candidatesTokenCount": 63,
            "thoughtsTokenCount": 40, "totalTokenCount": 12633}  # fmt: skip
    usage = gemini_usage_to_chat(meta)
    assert usage["prompt_tokens"] == 12530
    assert usage["completion_tokens"] == 103
    assert usage["total_tokens"] == meta["totalTokenCount"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 40}
