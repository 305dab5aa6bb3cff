"""The cost-accounting cases (tests/e2e/test_cost_accounting.py): each scripts the fake
upstreams with known usage and states the expected cost as arithmetic done by hand from
the test registry's prices (tests/e2e/registry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai.types.chat import ChatCompletionFunctionToolParam
from openai.types.responses import FunctionToolParam

TOOLS: list[ChatCompletionFunctionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
# `strict` is required (nullable) in OpenAI's FunctionTool, as the SDK's FunctionToolParam says.
RESPONSES_TOOLS: list[FunctionToolParam] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": TOOLS[0]["function"]["parameters"],
        "strict": False,
    }
]

# Fake OpenAI usage: (prompt, cached, completion, reasoning).
U1 = {"prompt_tokens": 1234, "cached_tokens": 234, "completion_tokens": 567, "reasoning_tokens": 0}
U2 = {
    "prompt_tokens": 4321,
    "cached_tokens": 1321,
    "completion_tokens": 2345,
    "reasoning_tokens": 2000,
}
# gpt-4o-mini: 0.15 in, 0.075 cached, 0.60 out per 1M.
COST_U1_4O_MINI = (1000 * 0.15 + 234 * 0.075 + 567 * 0.60) / 1e6  # = 507.75e-6
# o3-mini: 1.10 in, 0.55 cached, 4.40 out per 1M.
COST_U2_O3_MINI = (3000 * 1.10 + 1321 * 0.55 + 2345 * 4.40) / 1e6  # = 14344.55e-6
# o4-mini, priced per token: 0.0000011 in, 0.000000275 cached, 0.0000044 out.
COST_U2_O4_MINI = 3000 * 0.0000011 + 1321 * 0.000000275 + 2345 * 0.0000044  # = 13981.275e-6

# Gemini 3 Flash: 0.50 in, 0.05 cached, 3.00 out per 1M. Native usage: 2000 prompt (500
# cached), 300 candidates + 200 thoughts = 500 billed output.
GEMINI_META = {
    "promptTokenCount": 2000,
    "cachedContentTokenCount": 500,
    "candidatesTokenCount": 300,
    "thoughtsTokenCount": 200,
    "totalTokenCount": 2500,
}
COST_GEMINI_NATIVE = (1500 * 0.50 + 500 * 0.05 + 500 * 3.00) / 1e6  # = 2275e-6
# Compat usage: completion_tokens leaves the 300 thought tokens out (they are in the total).
COMPAT_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 100,
    "total_tokens": 1400,
    "prompt_tokens_details": {"cached_tokens": 400},
}
COST_GEMINI_COMPAT = (600 * 0.50 + 400 * 0.05 + 400 * 3.00) / 1e6  # = 1520e-6


def _native_answer(call: bool = False) -> dict[str, Any]:
    part = (
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
        if call
        else {"text": "Hello."}
    )
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": GEMINI_META,
        "modelVersion": "gemini-3-flash-preview",
        "responseId": "r1",
    }


def _native_stream() -> list[dict[str, Any]]:
    # Each chunk repeats the running usage; only the last one is final.
    return [
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Thinking", "thought": True}]},
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 2000,
                "cachedContentTokenCount": 500,
                "totalTokenCount": 2000,
            },
        },
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}],
            "usageMetadata": {
                "promptTokenCount": 2000,
                "cachedContentTokenCount": 500,
                "candidatesTokenCount": 1,
                "thoughtsTokenCount": 200,
                "totalTokenCount": 2201,
            },
        },
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "lo."}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": GEMINI_META,
        },
    ]


def _compat_answer() -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "gemini-3-flash-preview",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello."},
            }
        ],
        "usage": COMPAT_USAGE,
    }


def _compat_stream() -> list[dict[str, Any]]:
    base = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gemini-3-flash-preview",
    }
    return [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello."}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": COMPAT_USAGE},
    ]


@dataclass
class Case:
    id: str
    model: str
    api: str  # chat | responses | embeddings
    stream: bool
    tokens: tuple[
        int, int, int, int
    ]  # input (with cached), cached_input, output (with reasoning), reasoning
    cost: float
    native: str  # gen_ai_request_model
    provider: str  # gen_ai_provider_name
    openai_usage: dict[str, int] | None = None
    gemini: list[Any] = field(default_factory=list)  # scripted Gemini answers
    tools: bool = False


CASES = [
    # OpenAI chat, passed through.
    Case(
        "chat",
        "openai:chat_gpt-4o-mini",
        "chat",
        False,
        (1234, 234, 567, 0),
        COST_U1_4O_MINI,
        "gpt-4o-mini",
        "openai",
        U1,
    ),
    Case(
        "chat-stream",
        "openai:chat_gpt-4o-mini",
        "chat",
        True,
        (1234, 234, 567, 0),
        COST_U1_4O_MINI,
        "gpt-4o-mini",
        "openai",
        U1,
    ),
    Case(
        "chat-stream-tools",
        "openai:chat_gpt-4o-mini",
        "chat",
        True,
        (1234, 234, 567, 0),
        COST_U1_4O_MINI,
        "gpt-4o-mini",
        "openai",
        U1,
        tools=True,
    ),
    # OpenAI Responses, passed through; reasoning tokens are inside output, billed once.
    Case(
        "responses",
        "openai:reasoning_o3-mini",
        "responses",
        False,
        (4321, 1321, 2345, 2000),
        COST_U2_O3_MINI,
        "o3-mini",
        "openai",
        U2,
    ),
    Case(
        "responses-stream",
        "openai:reasoning_o3-mini",
        "responses",
        True,
        (4321, 1321, 2345, 2000),
        COST_U2_O3_MINI,
        "o3-mini",
        "openai",
        U2,
    ),
    Case(
        "responses-stream-tools",
        "openai:reasoning_o3-mini",
        "responses",
        True,
        (4321, 1321, 2345, 2000),
        COST_U2_O3_MINI,
        "o3-mini",
        "openai",
        U2,
        tools=True,
    ),
    # Bridged: chat client on a Responses model, Responses client on a chat model.
    Case(
        "chat-on-responses-stream",
        "openai:gpt-4o-mini",
        "chat",
        True,
        (1234, 234, 567, 0),
        COST_U1_4O_MINI,
        "gpt-4o-mini",
        "openai",
        U1,
    ),
    Case(
        "responses-on-chat",
        "openai:chat_gpt-4o-mini",
        "responses",
        False,
        (1234, 234, 567, 0),
        COST_U1_4O_MINI,
        "gpt-4o-mini",
        "openai",
        U1,
    ),
    Case(
        "responses-on-chat-stream",
        "openai:chat_gpt-4o-mini",
        "responses",
        True,
        (1234, 234, 567, 0),
        COST_U1_4O_MINI,
        "gpt-4o-mini",
        "openai",
        U1,
    ),
    # Per-token prices; the policy disables upstream streaming, the gateway emulates it.
    Case(
        "chat-per-token",
        "openai:chat_o4-mini",
        "chat",
        False,
        (4321, 1321, 2345, 2000),
        COST_U2_O4_MINI,
        "o4-mini",
        "openai",
        U2,
    ),
    Case(
        "chat-per-token-emulated-stream",
        "openai:chat_o4-mini",
        "chat",
        True,
        (4321, 1321, 2345, 2000),
        COST_U2_O4_MINI,
        "o4-mini",
        "openai",
        U2,
    ),
    # Gemini's OpenAI-compatible surface: hidden thoughts become reasoning inside output.
    Case(
        "gemini-compat",
        "gemini:openai-3-flash-preview",
        "chat",
        False,
        (1000, 400, 400, 300),
        COST_GEMINI_COMPAT,
        "gemini-3-flash-preview",
        "gcp.gemini",
        gemini=[_compat_answer()],
    ),
    Case(
        "gemini-compat-stream",
        "gemini:openai-3-flash-preview",
        "chat",
        True,
        (1000, 400, 400, 300),
        COST_GEMINI_COMPAT,
        "gemini-3-flash-preview",
        "gcp.gemini",
        gemini=[_compat_stream()],
    ),
    # Gemini native generateContent: thoughts + candidates = output; the stream's last chunk counts.
    Case(
        "gemini-native",
        "gemini:native-sdk-3-flash-preview",
        "chat",
        False,
        (2000, 500, 500, 200),
        COST_GEMINI_NATIVE,
        "gemini-3-flash-preview",
        "gcp.gemini",
        gemini=[_native_answer()],
    ),
    Case(
        "gemini-native-tools",
        "gemini:native-sdk-3-flash-preview",
        "chat",
        False,
        (2000, 500, 500, 200),
        COST_GEMINI_NATIVE,
        "gemini-3-flash-preview",
        "gcp.gemini",
        gemini=[_native_answer(call=True)],
        tools=True,
    ),
    Case(
        "gemini-native-stream",
        "gemini:native-sdk-3-flash-preview",
        "chat",
        True,
        (2000, 500, 500, 200),
        COST_GEMINI_NATIVE,
        "gemini-3-flash-preview",
        "gcp.gemini",
        gemini=[_native_stream()],
    ),
    Case(
        "gemini-native-responses-stream",
        "gemini:native-sdk-3-flash-preview",
        "responses",
        True,
        (2000, 500, 500, 200),
        COST_GEMINI_NATIVE,
        "gemini-3-flash-preview",
        "gcp.gemini",
        gemini=[_native_stream()],
    ),
    # Embeddings: the fake counts 5 tokens per input, at 0.02 per 1M.
    Case(
        "embeddings",
        "openai:embed_small",
        "embeddings",
        False,
        (15, 0, 0, 0),
        15 * 0.02 / 1e6,
        "text-embedding-3-small",
        "openai",
    ),
    Case(
        "gemini-compat-embeddings",
        "gemini:embed_openai_compat",
        "embeddings",
        False,
        (42, 0, 0, 0),
        42 * 0.15 / 1e6,
        "gemini-embedding-001",
        "gcp.gemini",
        gemini=[
            {
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": "gemini-embedding-001",
                "usage": {"prompt_tokens": 42, "total_tokens": 42},
            }
        ],
    ),
]
