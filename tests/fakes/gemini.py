"""A fake Gemini API (native and OpenAI-compatible surfaces) for tests, over real HTTP.

    fake = FakeGemini()
    fake.script({"candidates": [...]})                  # next answer, any endpoint
    fake.script([chunk1, chunk2])                       # next answer, streamed
    fake.script(FakeGemini.error(429, "Quota", "RESOURCE_EXHAUSTED", retry_delay="7s"))
    with serve(fake.app) as base:                       # tests.fakes.server.serve
        httpx.post(f"{base}/v1beta/models/gemini-2.5-flash:generateContent", ...)
    fake.requests[-1].json                              # what the gateway sent

Wire details follow Google's: `x-goog-api-key` (or `?key=`) on the native surface and
`Authorization: Bearer` on `/v1beta/openai/*`; a bad key is 400 INVALID_ARGUMENT with
an ErrorInfo `API_KEY_INVALID` (the compat surface wraps errors in a list), a missing
key 403 PERMISSION_DENIED; `?alt=sse` streams are `data: {json}\\r\\n\\r\\n` frames with no
`[DONE]`, other native streams one JSON array; compat streams end with `data: [DONE]`.
With nothing scripted, every endpoint gives a small default answer.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_TEXT = "Hello from fake Gemini."


@dataclass
class Reply:
    """One scripted answer: a JSON body, or (status 200) a stream of chunks."""

    status: int = 200
    body: Any = None
    chunks: list[Any] | None = None  # each dict becomes one frame; a str is sent raw
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None  # stream frames sent before the connection is dropped


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any


def google_error(status: int, message: str, google_status: str, **extra: Any) -> dict[str, Any]:
    """Google's AIP-193 error envelope."""
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    details = []
    if extra.get("reason"):
        details.append({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": extra["reason"],
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        })  # fmt: skip
        details.append({
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": message,
        })  # fmt: skip
    if extra.get("retry_delay"):
        details.append({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": extra["retry_delay"],
        })  # fmt: skip
    if details:
        error["details"] = details
    return {"error": error}


def _vector(text: str, size: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(size)]


def default_generate(model: str) -> dict[str, Any]:
    return {
        "candidates": [{
            "content": {"role": "model", "parts": [{"text": DEFAULT_TEXT}]},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11},
        "modelVersion": model,
        "responseId": "fake-response-id",
    }  # fmt: skip


def default_stream(model: str) -> list[dict[str, Any]]:
    first, rest = DEFAULT_TEXT[:6], DEFAULT_TEXT[6:]
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11}
    return [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": first}]}, "index": 0}],
         "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
         "modelVersion": model, "responseId": "fake-stream-id"},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": rest}]},
                         "finishReason": "STOP", "index": 0}],
         "usageMetadata": usage, "modelVersion": model, "responseId": "fake-stream-id"},
    ]  # fmt: skip


def default_compat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "fake-compat-id",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": DEFAULT_TEXT},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }  # fmt: skip


def default_compat_stream(model: str, include_usage: bool) -> list[dict[str, Any]]:
    base = {"id": "fake-compat-id", "object": "chat.completion.chunk", "created": 1700000000,
            "model": model}  # fmt: skip
    chunks = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": DEFAULT_TEXT}}],
        },
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    if include_usage:
        usage = {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


class FakeGemini:
    """The fake server: `.app` to serve, `.script(...)` to queue answers, `.requests` to
    inspect what arrived. Scripted answers are served first-in first-out, whatever the
    endpoint."""

    def __init__(self, api_key: str = "test-gemini-key") -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self.app = Starlette(routes=[
            Route("/v1beta/openai/chat/completions", self._compat_chat, methods=["POST"]),
            Route("/v1beta/openai/embeddings", self._compat_embeddings, methods=["POST"]),
            Route("/v1beta/models/{target:path}", self._native, methods=["POST"]),
        ])  # fmt: skip

    # ----------------------------------------------------------------- scripting

    def script(self, *replies: Reply | dict[str, Any] | list[Any]) -> None:
        """Queue answers: a dict is a 200 JSON body, a list a 200 stream of chunks."""
        for reply in replies:
            if isinstance(reply, dict):
                reply = Reply(body=reply)
            elif isinstance(reply, list):
                reply = Reply(chunks=reply)
            self._queue.append(reply)

    @staticmethod
    def error(status: int, message: str, google_status: str, **extra: Any) -> Reply:
        """A scripted Google error (extra: reason=..., retry_delay="7s", headers={...})."""
        headers = extra.pop("headers", {})
        return Reply(status=status, body=google_error(status, message, google_status, **extra),
                     headers=headers)  # fmt: skip

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    # ----------------------------------------------------------------- plumbing

    async def _record(self, request: Request) -> Recorded:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        recorded = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
        )
        self.requests.append(recorded)
        return recorded

    def _auth_error(self, rec: Recorded, compat: bool) -> Response | None:
        if compat:
            auth = rec.headers.get("authorization", "")
            key = auth[7:] if auth.lower().startswith("bearer ") else None
        else:
            key = rec.headers.get("x-goog-api-key") or rec.query.get("key")
        if key == self.api_key:
            return None
        if key:
            body: Any = google_error(400, "API key not valid. Please pass a valid API key.",
                                     "INVALID_ARGUMENT", reason="API_KEY_INVALID")  # fmt: skip
            status = 400
        else:
            body = google_error(403, "Method doesn't allow unregistered callers (callers without "
                                "established identity). Please use API Key or other form of API "
                                "consumer identity to call this API.", "PERMISSION_DENIED")  # fmt: skip
            status = 403
        return JSONResponse([body] if compat else body, status_code=status)

    def _next(self) -> Reply | None:
        return self._queue.popleft() if self._queue else None

    @staticmethod
    def _stream(chunks: list[Any], sse: bool, done: bool, headers: dict[str, str],
                cut_after: int | None = None) -> Response:
        # Google's own SSE frames end in \r\n\r\n; the compat surface's in \n\n.
        end = "\r\n\r\n" if not done else "\n\n"

        async def frames() -> AsyncIterator[bytes]:
            if not sse:
                yield b"["
            for n, chunk in enumerate(chunks):
                if cut_after is not None and n >= cut_after:
                    raise ConnectionResetError("scripted cut")
                data = chunk if isinstance(chunk, str) else json.dumps(chunk)
                if sse:
                    yield f"data: {data}{end}".encode()
                else:
                    yield ((",\r\n" if n else "") + data).encode()
            if sse and done:
                yield b"data: [DONE]\n\n"
            if not sse:
                yield b"]"

        media = "text/event-stream" if sse else "application/json"
        return StreamingResponse(frames(), media_type=media, headers=headers)

    def _answer(self, reply: Reply | None, default: Any, stream: bool, sse: bool = True,
                done: bool = False) -> Response:  # fmt: skip
        if reply is None:
            reply = Reply(chunks=default) if stream else Reply(body=default)
        if reply.chunks is not None and reply.status == 200:
            return self._stream(reply.chunks, sse, done, reply.headers, reply.cut_after)
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

    # ----------------------------------------------------------------- endpoints

    async def _native(self, request: Request) -> Response:
        rec = await self._record(request)
        if (denied := self._auth_error(rec, compat=False)) is not None:
            return denied
        model, _, method = request.path_params["target"].rpartition(":")
        body = rec.json if isinstance(rec.json, dict) else {}
        if method in ("generateContent", "streamGenerateContent") and not body.get("contents"):
            err = google_error(400, "* GenerateContentRequest.contents: contents is not specified\n",
                               "INVALID_ARGUMENT")  # fmt: skip
            return JSONResponse(err, status_code=400)
        if method == "generateContent":
            return self._answer(self._next(), default_generate(model), stream=False)
        if method == "streamGenerateContent":
            sse = rec.query.get("alt") == "sse"
            return self._answer(self._next(), default_stream(model), stream=True, sse=sse)
        if method == "batchEmbedContents":
            requests = body.get("requests") or []
            for n, item in enumerate(requests):
                if item.get("model") != f"models/{model}":
                    msg = (f"* BatchEmbedContentsRequest.requests[{n}].model: the model of each "
                           f"request must match the batch model models/{model}\n")  # fmt: skip
                    return JSONResponse(google_error(400, msg, "INVALID_ARGUMENT"), status_code=400)
            default = {"embeddings": [
                {"values": _vector(item["content"]["parts"][0]["text"],
                                   int(item.get("outputDimensionality") or 8))}
                for item in requests
            ]}  # fmt: skip
            return self._answer(self._next(), default, stream=False)
        msg = f"Method {method or '(none)'} is not found for models/{model}."
        return JSONResponse(google_error(404, msg, "NOT_FOUND"), status_code=404)

    async def _compat_chat(self, request: Request) -> Response:
        rec = await self._record(request)
        if (denied := self._auth_error(rec, compat=True)) is not None:
            return denied
        body = rec.json if isinstance(rec.json, dict) else {}
        model = str(body.get("model", ""))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            reply = self._next()
            return self._answer(reply, default_compat_stream(model, usage), stream=True, done=True)
        return self._answer(self._next(), default_compat_completion(model), stream=False)

    async def _compat_embeddings(self, request: Request) -> Response:
        rec = await self._record(request)
        if (denied := self._auth_error(rec, compat=True)) is not None:
            return denied
        body = rec.json if isinstance(rec.json, dict) else {}
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        size = int(body.get("dimensions") or 8)
        # Floats whatever encoding_format says: the surface is not known to honour base64.
        default = {
            "object": "list",
            "data": [{"object": "embedding", "index": n, "embedding": _vector(str(t), size)}
                     for n, t in enumerate(texts)],
            "model": body.get("model"),
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }  # fmt: skip
        return self._answer(self._next(), default, stream=False)
