"""Thought signatures: the tool-call-id codec and the round trip through two turns."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from gateway.translate.gemini import chat_to_generate_content, generate_content_to_chat
from gateway.translate.gemini_compat import decode_tool_call_id, encode_tool_call_id

# Realistic (base64) thought signatures, with each padding length.
SIG_A = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgE="
SIG_B = "EpQBCpEBAdHtim9sYXN0LXNpZ25hdHVyZS1iLXdpdGgtcGFkZGluZy0yAA=="
SIG_C = "Cg8BAdHtim+/+abcd"
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def _resp(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "totalTokenCount": 14},
    }


@pytest.mark.parametrize("signature", [SIG_A, SIG_B, SIG_C, "x", "not base64: é/=", "=="])
def test_signature_codec_round_trip(signature: str) -> None:
    for base in ("call_0123456789abcdef01234567", "gemini-id-7", "a__b"):
        encoded = encode_tool_call_id(base, signature)
        assert SAFE_ID.match(encoded), encoded
        assert decode_tool_call_id(encoded) == (base, signature)
    assert encode_tool_call_id("call_x", None) == "call_x"
    assert decode_tool_call_id("call_plain") == ("call_plain", None)


def test_signature_round_trip_two_turns() -> None:
    """Turn 1: Gemini 3 calls two tools in parallel (signature on the first call only).
    The client echoes back only ids; turn 2 must carry the signature on the same part."""
    turn1 = _resp([
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG_B},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
    ])  # fmt: skip
    message = generate_content_to_chat(turn1, "m", include_thoughts=False)["choices"][0]["message"]
    assert message["content"] is None
    first, second = message["tool_calls"]
    assert first["extra_content"] == {"google": {"thought_signature": SIG_B}}
    assert "extra_content" not in second
    assert orjson.loads(first["function"]["arguments"]) == {"city": "Paris"}
    assert len({first["id"], second["id"]}) == 2
    # What an OpenAI SDK user sends back: ids, names and arguments; no extra fields.
    echoed = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c["id"], "type": "function", "function": c["function"]} for c in (first, second)
        ],
    }
    body = {"messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        echoed,
        {"role": "tool", "tool_call_id": first["id"], "content": "{\"temp\": 21}"},
        {"role": "tool", "tool_call_id": second["id"], "content": "{\"temp\": 25}"},
    ]}  # fmt: skip
    contents = chat_to_generate_content(body)["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG_B},
        {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
    ]}  # fmt: skip
    assert contents[2] == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "get_weather", "response": {"temp": 25}}},
    ]}  # fmt: skip
    # A client that rewrote the ids but kept extra_content still round-trips.
    kept = {"role": "assistant", "tool_calls": [
        {"id": "call_client_1", "type": "function", "function": first["function"],
         "extra_content": first["extra_content"]}]}  # fmt: skip
    out = chat_to_generate_content({"messages": [{"role": "user", "content": "x"}, kept]})
    assert out["contents"][1]["parts"][0]["thoughtSignature"] == SIG_B


def test_gemini_call_ids_and_text_signature_round_trip() -> None:
    turn1 = _resp([
        {"text": "Let me check."},
        {"functionCall": {"id": "fc-9", "name": "lookup", "args": {"q": "x"}}, "thoughtSignature": SIG_A},
    ])  # fmt: skip
    message = generate_content_to_chat(turn1, "m", include_thoughts=False)["choices"][0]["message"]
    call = message["tool_calls"][0]
    assert decode_tool_call_id(call["id"]) == ("fc-9", SIG_A)
    body = {"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": message["content"], "tool_calls": message["tool_calls"]},
        {"role": "tool", "tool_call_id": call["id"], "content": "found"},
    ]}  # fmt: skip
    contents = chat_to_generate_content(body)["contents"]
    assert contents[1]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"name": "lookup", "args": {"q": "x"}, "id": "fc-9"}, "thoughtSignature": SIG_A},
    ]  # fmt: skip
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "lookup", "response": {"content": "found"}, "id": "fc-9"}}
    ]
    # A signature Gemini put on a text part goes back on the last text part.
    text_turn = {"role": "assistant", "content": "Done.",
                 "extra_content": {"google": {"thought_signature": SIG_C}}}  # fmt: skip
    out = chat_to_generate_content({"messages": [{"role": "user", "content": "q"}, text_turn]})
    assert out["contents"][1]["parts"] == [{"text": "Done.", "thoughtSignature": SIG_C}]
