"""An OpenAI-compatible upstream whose usage is what a real one would report for the
request: prompt tokens counted with the gateway's own tokenizer (exact for text on the
o200k models), completion tokens min(max tokens, ANSWER_TOKENS). So a reservation is a
true upper bound and each call's cost can be computed by hand.

The last user message steers it: containing "fail" answers 500; "slow" streams one
chunk every SLOW_S (for clients that leave mid-stream)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.tokens import estimate_chat_tokens

API_KEY = "sk-test-honest-upstream-3c4d5e6f"
ANSWER_TOKENS = 30
SLOW_S = 0.05
INPUT_PRICE, OUTPUT_PRICE = Decimal("1.5"), Decimal("6.0")  # budget:chat, per 1M tokens


def prompt_tokens(messages: Sequence[Mapping[str, object]]) -> int:
    return estimate_chat_tokens(messages)


def cost(messages: Sequence[Mapping[str, object]], max_tokens: int | None) -> Decimal:
    """What budget:chat charges for a completed call (the hand computation)."""
    out = ANSWER_TOKENS if max_tokens is None else min(max_tokens, ANSWER_TOKENS)
    return (prompt_tokens(messages) * INPUT_PRICE + out * OUTPUT_PRICE) / 1_000_000


class HonestUpstream:
    def __init__(self) -> None:
        self.calls = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _chat(self, request: Request) -> Response:
        self.calls += 1
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return Response(
                b'{"error": {"message": "bad key", "type": "invalid_request_error"}}', 401
            )
        body = orjson.loads(await request.body())
        messages = body.get("messages") or []
        last = str(messages[-1].get("content", "")) if messages else ""
        if "fail" in last:
            return Response(
                orjson.dumps(
                    {
                        "error": {
                            "message": "upstream exploded",
                            "type": "server_error",
                            "code": None,
                            "param": None,
                        }
                    }
                ),
                500,
                media_type="application/json",
            )
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        out = ANSWER_TOKENS if cap is None else min(int(cap), ANSWER_TOKENS)
        usage = {
            "prompt_tokens": prompt_tokens(messages),
            "completion_tokens": out,
            "total_tokens": prompt_tokens(messages) + out,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        base = {
            "id": "chatcmpl-honest",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "fp_honest",
        }
        words = ["w"] * out
        if not body.get("stream"):
            return Response(
                orjson.dumps(
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": {
                                    "role": "assistant",
                                    "content": " ".join(words),
                                    "refusal": None,
                                },
                                "logprobs": None,
                                "finish_reason": "length" if out < ANSWER_TOKENS else "stop",
                            }
                        ],
                        "usage": usage,
                    }
                ),
                media_type="application/json",
            )
        slow = "slow" in last
        return StreamingResponse(
            self._stream(base, words, usage, slow), media_type="text/event-stream"
        )

    async def _stream(
        self, base: dict[str, Any], words: list[str], usage: dict[str, Any], slow: bool
    ) -> AsyncIterator[bytes]:
        def frame(data: dict[str, Any]) -> bytes:
            return b"data: " + orjson.dumps(data) + b"\n\n"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }

        yield frame(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(words):
            if slow:
                await asyncio.sleep(SLOW_S)
            yield frame(chunk({"content": word if i == 0 else " " + word}))
        yield frame(chunk({}, "stop"))
        yield frame({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"
