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
With nothing scripted, every endpoint answers as a model would, following the request:
a function call when functions are declared (the allowed one under mode ANY; with a
`thoughtSignature` on Gemini 3 models), JSON for a JSON response type, thought summaries
when asked for, an answer cut with MAX_TOKENS / `length` when the token limit is tiny
(<= TINY_LIMIT), and otherwise a small default text.

Like the live API, the native surface refuses a body its v1beta messages do not allow
(unknown names included) and the live rules they do not show (`parameters` with mode
ANY, `type` unless `anyOf`, `items` for arrays); the compat surface refuses what OpenAI's
chat schema does not allow, less Google's documented extensions (`extra_body.google`,
`extra_content.google`). See tests/conformance/spec.py; refused bodies are kept in
`refused`.
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

from tests.conformance.spec import compat_request_errors, gemini_request_errors

DEFAULT_TEXT = "Hello from fake Gemini."
TINY_LIMIT = 16
JSON_TEXT = '{"city":"Paris","temperature":21}'
THOUGHT_TEXT = "Thinking about the weather in Paris."
# What Gemini 3 puts on the first functionCall of a step (standard base64).
SIGNATURE = "CiQB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQfA1xT6bR2nL0cH5uYgEhwKGgEB0e2Kb7rJpZ4m+9w/KxvQ3dJ8sQ=="


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


def _answer_parts(model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, int]:
    """(parts, finishReason, thought tokens) for a generateContent body."""
    config = body.get("generationConfig") or {}
    thoughts = bool((config.get("thinkingConfig") or {}).get("includeThoughts"))
    parts: list[dict[str, Any]] = [{"text": THOUGHT_TEXT, "thought": True}] if thoughts else []
    decls = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    last = (body.get("contents") or [{}])[-1]
    answered = any("functionResponse" in part for part in last.get("parts") or [])
    if decls and calling.get("mode", "AUTO") != "NONE" and not answered:
        name = (calling.get("allowedFunctionNames") or [decls[0]["name"]])[0]
        call: dict[str, Any] = {"functionCall": {"name": name, "args": {"city": "Paris"}}}
        if "gemini-3" in model:
            call["thoughtSignature"] = SIGNATURE
        return [*parts, call], "STOP", 7 if thoughts else 0
    text = JSON_TEXT if config.get("responseMimeType") == "application/json" else DEFAULT_TEXT
    limit = config.get("maxOutputTokens")
    cut = isinstance(limit, int) and limit <= TINY_LIMIT
    parts.append({"text": " ".join(text.split(" ")[:2]) if cut else text})
    return parts, "MAX_TOKENS" if cut else "STOP", 7 if thoughts else 0


def _usage(thoughts: int) -> dict[str, Any]:
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11 + thoughts}
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def answer_generate(model: str, body: dict[str, Any]) -> dict[str, Any]:
    parts, finish, thoughts = _answer_parts(model, body)
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
        ],
        "usageMetadata": _usage(thoughts),
        "modelVersion": model,
        "responseId": "fake-response-id",
    }


def answer_stream(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    parts, finish, thoughts = _answer_parts(model, body)
    head, tail = parts[:-1], parts[-1]
    if "text" in tail and len(tail["text"]) > 6:  # the text arrives in two pieces
        head, tail = [*head, {"text": tail["text"][:6]}], {"text": tail["text"][6:]}
    base = {"modelVersion": model, "responseId": "fake-stream-id"}
    chunks = []
    if head:
        chunks.append(
            {
                "candidates": [{"content": {"role": "model", "parts": head}, "index": 0}],
                "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5},
                **base,
            }
        )
    chunks.append(
        {
            "candidates": [
                {"content": {"role": "model", "parts": [tail]}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": _usage(thoughts),
            **base,
        }
    )
    return chunks


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


def _compat_plan(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str, int]:
    """(content, tool calls, finish_reason, hidden thought tokens) for a compat body."""
    model = str(body.get("model", ""))
    thinking = ((body.get("extra_body") or {}).get("google") or {}).get("thinking_config") or {}
    thoughts = bool(thinking.get("include_thoughts"))
    prefix = f"<thought>{THOUGHT_TEXT}</thought>" if thoughts else ""
    messages = body.get("messages") or [{}]
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if tools and choice != "none" and messages[-1].get("role") != "tool":
        named = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        call: dict[str, Any] = {
            "id": "function-call-1",
            "type": "function",
            "function": {
                "name": named or tools[0]["function"]["name"],
                "arguments": '{"city":"Paris"}',
            },
        }
        if "gemini-3" in model:
            call["extra_content"] = {"google": {"thought_signature": SIGNATURE}}
        return prefix, [call], "tool_calls", 7 if thoughts else 0
    fmt = (body.get("response_format") or {}).get("type")
    text = JSON_TEXT if fmt in ("json_object", "json_schema") else DEFAULT_TEXT
    limit = body.get("max_tokens")
    cut = isinstance(limit, int) and limit <= TINY_LIMIT
    text = " ".join(text.split(" ")[:2]) if cut else text
    return prefix + text, [], "length" if cut else "stop", 7 if thoughts else 0


def answer_compat(body: dict[str, Any]) -> dict[str, Any]:
    content, calls, finish, hidden = _compat_plan(body)
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "fake-compat-id", "object": "chat.completion", "created": 1700000000,
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        # As Google's surface counts: completion_tokens without the thoughts, the total with.
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11 + hidden},
    }  # fmt: skip


def answer_compat_stream(body: dict[str, Any]) -> list[dict[str, Any]]:
    content, calls, finish, hidden = _compat_plan(body)
    base = {"id": "fake-compat-id", "object": "chat.completion.chunk", "created": 1700000000,
            "model": body.get("model")}  # fmt: skip
    delta: dict[str, Any] = {"role": "assistant"}
    if content:
        delta["content"] = content
    if calls:
        delta["tool_calls"] = [{"index": n, **c} for n, c in enumerate(calls)]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11 + hidden}
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


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

    def __init__(self, api_key: str = "test-gemini-key", strict: bool = True) -> None:
        self.api_key = api_key
        self.strict = strict
        self.requests: list[Recorded] = []
        self.refused: list[tuple[Recorded, list[str]]] = []
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
    def _stream(
        chunks: list[Any],
        sse: bool,
        done: bool,
        headers: dict[str, str],
        cut_after: int | None = None,
    ) -> Response:
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
        known = method in (
            "generateContent",
            "streamGenerateContent",
            "batchEmbedContents",
            "embedContent",
        )
        problems = gemini_request_errors(method, body) if self.strict and known else []
        if problems:
            self.refused.append((rec, problems))
            message = "".join(f"* GenerateContentRequest.{p}\n" for p in problems)
            return JSONResponse(google_error(400, message, "INVALID_ARGUMENT"), status_code=400)
        if method in ("generateContent", "streamGenerateContent") and not body.get("contents"):
            err = google_error(400, "* GenerateContentRequest.contents: contents is not specified\n",
                               "INVALID_ARGUMENT")  # fmt: skip
            return JSONResponse(err, status_code=400)
        if method == "generateContent":
            return self._answer(self._next(), answer_generate(model, body), stream=False)
        if method == "streamGenerateContent":
            sse = rec.query.get("alt") == "sse"
            return self._answer(self._next(), answer_stream(model, body), stream=True, sse=sse)
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
        problems = compat_request_errors(body) if self.strict else []
        if problems:
            self.refused.append((rec, problems))
            error = google_error(
                400, "Invalid request: " + "; ".join(problems)[:2000], "INVALID_ARGUMENT"
            )
            return JSONResponse([error], status_code=400)
        if body.get("stream"):
            return self._answer(self._next(), answer_compat_stream(body), stream=True, done=True)
        return self._answer(self._next(), answer_compat(body), stream=False)

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
