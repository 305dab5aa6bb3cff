"""An upstream that holds every call open until the test lets it go, served for real.

A streamed call gets its headers and first chunk at once, then waits; an unstreamed one
waits before answering. `held` counts the calls waiting now, `seen` every call received.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def _chunk(
    delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None
) -> bytes:
    payload: dict[str, Any] = {
        "id": "chatcmpl-held",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        payload["usage"] = usage
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class Holding:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.held = 0
        self.seen = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    async def _wait(self) -> None:
        self.held += 1
        try:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        finally:
            self.held -= 1

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.seen += 1
        if not body.get("stream"):
            await self._wait()
            return Response(
                orjson.dumps(
                    {
                        "id": "chatcmpl-held",
                        "object": "chat.completion",
                        "created": 1,
                        "model": "gpt-4o-mini",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "Hi"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": USAGE,
                    }
                ),
                media_type="application/json",
            )

        async def frames() -> AsyncIterator[bytes]:
            yield _chunk({"role": "assistant", "content": "Hi"})
            await self._wait()
            yield _chunk({}, "stop")
            yield _chunk({}, usage=USAGE) if body.get("stream_options") else b""
            yield b"data: [DONE]\n\n"

        return StreamingResponse(frames(), media_type="text/event-stream")
