"""A hostile upstream: it echoes the key it receives in every field it can, redirects,
sets cookies, sends gzip bombs and broken stream frames. Served for real on 127.0.0.1
by tests.fakes.server; each test queues the misbehaviour it wants (`fake.queue`).

It speaks just enough of OpenAI's chat and Responses APIs and Gemini's native and
OpenAI-compatible surfaces for the gateway to take its answers for real ones.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

MB = 1024 * 1024


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


def gzip_bomb(prefix: bytes, size: int, suffix: bytes) -> bytes:
    """`prefix` + `size` spaces + `suffix`, gzipped: a few tens of kB for tens of MB.

    Whitespace inside a JSON value is still valid JSON, so a gateway that inflates it
    whole would take it for a real (huge) answer.
    """
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * MB
    parts = [z.compress(prefix)]
    for _ in range(size // MB):
        parts.append(z.compress(block))
    parts.append(z.compress(b" " * (size % MB)))
    parts.append(z.compress(suffix))
    parts.append(z.flush())
    return b"".join(parts)


def _sse(payload: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


class Hostile:
    def __init__(self) -> None:
        self.queue: list[str] = []  # the next calls' misbehaviours, in order; empty: behave
        self.seen: list[Seen] = []
        self.bomb_bytes = 40 * MB
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1beta/openai/chat/completions", self._chat, methods=["POST"]),
                Route("/v1beta/models/{rest:path}", self._gemini, methods=["POST"]),
            ]
        )

    async def _take(self, request: Request) -> tuple[str, str, dict[str, Any]]:
        body = await request.body()
        self.seen.append(Seen(request.url.path, dict(request.headers), body))
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ") if auth else request.headers.get("x-goog-api-key", "")
        mode = self.queue.pop(0) if self.queue else "ok"
        return mode, key, orjson.loads(body) if body else {}

    # ---- what every surface shares ----------------------------------------------------------

    @staticmethod
    def _echo_error(key: str, status: int = 400) -> Response:
        body = {
            "error": {
                "message": f"Incorrect API key provided: {key}",
                "type": key,
                "param": key,
                "code": key,
            }
        }
        return Response(
            orjson.dumps(body),
            status,
            media_type="application/json",
            headers={"retry-after": key, "set-cookie": f"session={key}; Path=/"},
        )

    def _common(self, mode: str, key: str) -> Response | None:
        if mode == "echo_error":
            return self._echo_error(key)
        if mode in ("500", "502", "503", "504"):
            return Response(
                orjson.dumps({"error": {"message": f"failed ({mode})", "type": "server_error"}}),
                int(mode),
                media_type="application/json",
            )
        if mode == "echo_text":  # a long text body with the key straddling character 500
            text = "x" * 490 + key + " and more"
            return Response(text, 500, media_type="text/plain")
        if mode == "redirect":
            return Response(b"", 302, headers={"location": "http://127.0.0.1:9/elsewhere"})
        if mode == "redirect_body":
            return Response(
                b"<html>moved</html>",
                301,
                headers={"location": "http://127.0.0.1:9/"},
                media_type="text/html",
            )
        if mode == "slow":
            return None  # handled by the caller (it needs to await)
        return None

    # ---- OpenAI chat (and Gemini's compat surface) ------------------------------------------

    def _completion(self, model: str, text: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-hostile",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }

    def _chunk(
        self, model: str, delta: dict[str, Any], finish: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-hostile",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    async def _chat(self, request: Request) -> Response:
        mode, key, body = await self._take(request)
        common = self._common(mode, key)
        if common is not None:
            return common
        model = str(body.get("model", "m"))
        if mode == "cookie":
            response = Response(
                orjson.dumps(self._completion(model, "ok")), media_type="application/json"
            )
            response.headers["set-cookie"] = f"session={key}; Path=/"
            return response
        if mode == "gzip_bomb":
            prefix = orjson.dumps(self._completion(model, "ok"))[:-1] + b', "pad": "'
            return Response(
                gzip_bomb(prefix, self.bomb_bytes, b'"}'),
                media_type="application/json",
                headers={"content-encoding": "gzip"},
            )
        if mode == "gzip_ok":
            return Response(
                gzip.compress(orjson.dumps(self._completion(model, "zipped"))),
                media_type="application/json",
                headers={"content-encoding": "gzip"},
            )
        if not body.get("stream"):
            return Response(
                orjson.dumps(self._completion(model, "ok")), media_type="application/json"
            )
        return StreamingResponse(
            self._chat_stream(mode, key, model),
            media_type="text/event-stream",
            headers={"content-encoding": "gzip"} if mode == "stream_bomb" else None,
        )

    async def _chat_stream(self, mode: str, key: str, model: str) -> AsyncIterator[bytes]:
        first = _sse(self._chunk(model, {"role": "assistant", "content": "Hel"}))
        if mode == "stream_bomb":
            z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            yield z.compress(first)
            yield z.compress(b'data: {"pad": "')
            block = b" " * MB
            for _ in range(self.bomb_bytes // MB):
                yield z.compress(block)
            yield z.compress(b'"}\n\n') + z.flush()
            return
        yield first
        if mode == "stream_echo_error":
            yield _sse(
                {"error": {"message": f"boom {key}", "type": key, "param": key, "code": key}}
            )
            return
        if mode == "stream_bad_json":
            yield b'data: {"id": "chatcmpl-hostile", "choices": [{"delta": {"content": "lo"\n\n'
            yield b"data: [DONE]\n\n"
            return
        if mode == "stream_split_key":  # the key cut in two across chunks
            half = len(key) // 2
            yield (
                b'data: {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "choices": [{"index": 0,'
                b' "delta": {"content": "' + key[:half].encode()
            )
            await asyncio.sleep(0.05)
            yield key[half:].encode() + b'"}, "finish_reason": null}]}\n\n'
        if mode == "stream_slow":  # about 3 s, longer than the tests' receive timeouts
            for _ in range(12):
                await asyncio.sleep(0.25)
                yield _sse(self._chunk(model, {"content": "."}))
        yield _sse(self._chunk(model, {}, "stop"))
        yield _sse(
            {
                **self._chunk(model, {}),
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            }
        )
        yield b"data: [DONE]\n\n"

    # ---- OpenAI Responses -------------------------------------------------------------------

    def _response(self, model: str, status: str = "completed", error: Any = None) -> dict[str, Any]:
        return {
            "id": "resp_hostile",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": model,
            "error": error,
            "incomplete_details": None,
            "output": []
            if error
            else [
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        }

    async def _responses(self, request: Request) -> Response:
        mode, key, body = await self._take(request)
        common = self._common(mode, key)
        if common is not None:
            return common
        model = str(body.get("model", "m"))
        failed = {"code": key, "message": f"failed {key}"}
        if not body.get("stream"):
            if mode == "failed_echo":
                return Response(
                    orjson.dumps(self._response(model, "failed", failed)),
                    media_type="application/json",
                )
            return Response(orjson.dumps(self._response(model)), media_type="application/json")
        return StreamingResponse(
            self._responses_stream(mode, key, model, failed), media_type="text/event-stream"
        )

    async def _responses_stream(
        self, mode: str, key: str, model: str, failed: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        created = {**self._response(model, "in_progress"), "output": [], "usage": None}
        yield _sse(
            {"type": "response.created", "sequence_number": 0, "response": created},
            "response.created",
        )
        if mode == "stream_echo_error":
            yield _sse(
                {
                    "type": "error",
                    "sequence_number": 1,
                    "code": key,
                    "message": f"boom {key}",
                    "param": key,
                },
                "error",
            )
            return
        if mode == "failed_echo":
            yield _sse(
                {
                    "type": "response.failed",
                    "sequence_number": 1,
                    "response": self._response(model, "failed", failed),
                },
                "response.failed",
            )
            return
        yield _sse(
            {"type": "response.completed", "sequence_number": 1, "response": self._response(model)},
            "response.completed",
        )

    # ---- Gemini native ----------------------------------------------------------------------

    async def _gemini(self, request: Request) -> Response:
        mode, key, _ = await self._take(request)
        if mode == "echo_error":
            body = {
                "error": {
                    "code": 400,
                    "message": f"API key not valid: {key}",
                    "status": "INVALID_ARGUMENT",
                    "details": [{"@type": key, "reason": key}],
                }
            }
            return Response(orjson.dumps(body), 400, media_type="application/json")
        common = self._common(mode, key)
        if common is not None:
            return common
        stream = request.url.path.endswith(":streamGenerateContent")
        answer = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "ok"}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 5,
                "candidatesTokenCount": 2,
                "totalTokenCount": 7,
            },
            "modelVersion": "gemini-2.5-flash",
        }
        if not stream:
            return Response(orjson.dumps(answer), media_type="application/json")

        async def frames() -> AsyncIterator[bytes]:
            first = {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}
                ]
            }
            yield _sse(first)
            if mode == "stream_echo_error":
                yield _sse(
                    {
                        "error": {
                            "code": 503,
                            "message": f"boom {key}",
                            "status": key,
                            "details": [{"reason": key}],
                        }
                    }
                )
                return
            yield _sse(answer)

        return StreamingResponse(frames(), media_type="text/event-stream")
