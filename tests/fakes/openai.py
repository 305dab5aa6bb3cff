"""A fake OpenAI API (chat completions, responses, embeddings) speaking the documented
wire format field for field, served for real on 127.0.0.1 by tests.fakes.server.

It records every request it receives and can be scripted to answer errors or break.
Like the live API it refuses a body its published schema does not allow, unknown fields
included, and the live limits the schema does not show (tool call ids over 40
characters in chat, `call_id` over 64 in Responses): see tests/conformance/spec.py.
Refused bodies are kept in `refused`.

What it answers follows the request, as a model would: a tool call when tools are
offered (the named one when `tool_choice` names one), JSON for a JSON response format,
an answer cut with `length` / `incomplete` when the token limit is tiny
(<= TINY_LIMIT), a reasoning summary item when a Responses request asks for one, and
log probabilities when asked for.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.conformance.spec import openai_request_errors
from tests.fakes.openai_responses import logprobs as token_logprobs
from tests.fakes.openai_responses import response_object, stream_events
from tests.fakes.openai_responses import tokens as fake_tokens

USAGE = {
    "prompt_tokens": 1200,
    "cached_tokens": 200,
    "completion_tokens": 300,
    "reasoning_tokens": 100,
}
TINY_LIMIT = 16  # the smallest max_output_tokens Responses takes: answers get cut below it
JSON_TEXT = '{"city":"Paris","temperature":21}'
REASONING_TEXT = "The user wants the weather; Paris is the likely city."


@dataclass
class Scripted:
    """One scripted answer: an error status with a body, or a stream cut short."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    cut_stream_after: int | None = None  # chunks sent before the connection is dropped
    delay_s: float = 0.0
    raw: bytes | None = None  # sent as it is (with `status` and `content_type`): not JSON, HTML...
    content_type: str = "application/json"
    chunk_delay_s: float = 0.0  # pause before each streamed chunk: a slow or stalled stream


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    json: Any


class FakeOpenAI:
    def __init__(
        self,
        api_key: str = "sk-test-fake-openai-key",
        text: str = "Hello from the fake upstream",
        strict: bool = True,
    ) -> None:
        self.api_key = api_key
        self.text = text
        self.strict = strict
        self.usage = dict(USAGE)
        self.requests: list[Received] = []
        self.refused: list[tuple[Received, list[str]]] = []
        self.script: list[Scripted] = []
        self.disconnects = 0  # streams the gateway stopped reading before their end
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )

    @property
    def last(self) -> Received:
        return self.requests[-1]

    async def _receive(self, request: Request) -> tuple[Any, Response | None, Scripted | None]:
        body = orjson.loads(await request.body())
        self.requests.append(Received(request.url.path, dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return (
                body,
                _error(
                    401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
                ),
                None,
            )
        problems = (
            openai_request_errors(request.url.path.removeprefix("/v1"), body) if self.strict else []
        )
        if problems:
            self.refused.append((self.requests[-1], problems))
            return (
                body,
                _error(
                    400,
                    "Invalid request: " + "; ".join(problems)[:2000],
                    "invalid_request_error",
                    None,
                ),
                None,
            )
        scripted = self.script.pop(0) if self.script else None
        if scripted and scripted.delay_s:
            deadline = time.monotonic() + scripted.delay_s
            while time.monotonic() < deadline:  # the "model" thinks, watching the connection
                await asyncio.sleep(0.02)
                if await request.is_disconnected():
                    self.disconnects += 1
                    return body, Response(status_code=499), None
        if scripted and scripted.raw is not None:
            return (
                body,
                Response(
                    scripted.raw,
                    scripted.status,
                    scripted.headers,
                    media_type=scripted.content_type,
                ),
                None,
            )
        if scripted and scripted.status >= 400:
            return (
                body,
                Response(
                    orjson.dumps(scripted.body),
                    scripted.status,
                    scripted.headers,
                    media_type="application/json",
                ),
                None,
            )
        return body, None, scripted

    # ---- chat completions -------------------------------------------------------------
    def _chat_usage(self) -> dict[str, Any]:
        u = self.usage
        return {
            "prompt_tokens": u["prompt_tokens"],
            "completion_tokens": u["completion_tokens"],
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"], "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": u["reasoning_tokens"],
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _wants_tool(self, body: dict[str, Any]) -> dict[str, Any] | None:
        tools = body.get("tools") or []
        messages = body.get("messages") or []
        if (
            not tools
            or body.get("tool_choice") == "none"
            or (messages and messages[-1].get("role") == "tool")
        ):
            return None
        choice = body.get("tool_choice")
        named = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        return {"name": named or tools[0]["function"]["name"], "arguments": '{"city":"Paris"}'}

    def _text_for(self, body: dict[str, Any], json_format: bool, limit: Any) -> tuple[str, bool]:
        """(answer text, cut by the token limit)."""
        text = JSON_TEXT if json_format else self.text
        if isinstance(limit, int) and limit <= TINY_LIMIT:
            return " ".join(text.split(" ")[:2]), True
        return text, False

    @staticmethod
    def _chat_logprobs(tokens: list[str], body: dict[str, Any]) -> dict[str, Any] | None:
        if not body.get("logprobs"):
            return None
        return {
            "content": token_logprobs(tokens, int(body.get("top_logprobs") or 0)),
            "refusal": None,
        }

    async def _chat(self, request: Request) -> Response:
        body, error, scripted = await self._receive(request)
        if error:
            return error
        call = self._wants_tool(body)
        fmt = (body.get("response_format") or {}).get("type")
        text, cut = self._text_for(
            body,
            fmt in ("json_object", "json_schema"),
            body.get("max_completion_tokens", body.get("max_tokens")),
        )
        finish = "tool_calls" if call else ("length" if cut else "stop")
        base = {
            "id": "chatcmpl-fake123",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._chat_stream(base, call, include_usage, scripted, text, finish, body),
                media_type="text/event-stream",
            )
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if call else text,
            "refusal": None,
            "annotations": [],
        }
        if call:
            message["tool_calls"] = [{"id": "call_fake1", "type": "function", "function": call}]
        payload = {
            **base,
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None if call else self._chat_logprobs(fake_tokens(text), body),
                    "finish_reason": finish,
                }
            ],
            "usage": self._chat_usage(),
        }
        return Response(orjson.dumps(payload), media_type="application/json")

    async def _chat_stream(
        self,
        base: dict[str, Any],
        call: dict[str, Any] | None,
        include_usage: bool,
        scripted: Scripted | None,
        text: str = "",
        finish: str = "stop",
        body: dict[str, Any] | None = None,
    ) -> AsyncIterator[bytes]:
        def chunk(
            delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
        ) -> dict[str, Any]:
            out = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
                ],
            }
            if include_usage:
                out["usage"] = None
            return out

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if call:
            chunks.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_fake1",
                                "type": "function",
                                "function": {"name": call["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for piece in ('{"city":', '"Paris"}'):
                chunks.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
            chunks.append(chunk({}, "tool_calls"))
        else:
            words = (text or self.text).split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                chunks.append(
                    chunk({"content": piece}, logprobs=self._chat_logprobs([piece], body or {}))
                )
            chunks.append(chunk({}, finish))
        if include_usage:
            chunks.append(
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": self._chat_usage(),
                }
            )
        frames = [b"data: " + orjson.dumps(item) + b"\n\n" for item in chunks] + [
            b"data: [DONE]\n\n"
        ]
        async for frame in self._paced(frames, scripted):
            yield frame

    # ---- responses ----------------------------------------------------------------------
    def _responses_usage(self) -> dict[str, Any]:
        u = self.usage
        return {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": u["cached_tokens"], "cache_write_tokens": 0},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
        }

    def _response(
        self,
        body: dict[str, Any],
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return response_object(body, status, output, usage)

    def _output(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """(output items, status)."""
        tools = body.get("tools") or []
        given = body.get("input")
        items: list[Any] = given if isinstance(given, list) else []
        answered = any(
            isinstance(i, dict) and i.get("type") == "function_call_output" for i in items
        )
        output: list[dict[str, Any]] = []
        if (body.get("reasoning") or {}).get("summary"):
            output.append(
                {
                    "type": "reasoning",
                    "id": "rs_fake1",
                    "summary": [{"type": "summary_text", "text": REASONING_TEXT}],
                }
            )
        choice = body.get("tool_choice")
        if tools and not answered and choice != "none":
            name = (
                choice.get("name")
                if isinstance(choice, dict) and choice.get("name")
                else tools[0]["name"]
            )
            output.append(
                {
                    "type": "function_call",
                    "id": "fc_fake1",
                    "call_id": "call_fake1",
                    "name": name,
                    "arguments": '{"city":"Paris"}',
                    "status": "completed",
                }
            )
            return output, "completed"
        fmt = ((body.get("text") or {}).get("format") or {}).get("type")
        text, cut = self._text_for(
            body, fmt in ("json_object", "json_schema"), body.get("max_output_tokens")
        )
        logprobs = []
        if "message.output_text.logprobs" in (body.get("include") or []):
            logprobs = token_logprobs(fake_tokens(text), int(body.get("top_logprobs") or 0))
        status = "incomplete" if cut else "completed"
        output.append(
            {
                "type": "message",
                "id": "msg_fake1",
                "status": status,
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}
                ],
            }
        )
        return output, status

    async def _responses(self, request: Request) -> Response:
        body, error, scripted = await self._receive(request)
        if error:
            return error
        output, status = self._output(body)
        if body.get("stream"):
            return StreamingResponse(
                self._responses_stream(body, output, scripted, status),
                media_type="text/event-stream",
            )
        return Response(
            orjson.dumps(self._response(body, status, output, self._responses_usage())),
            media_type="application/json",
        )

    async def _responses_stream(
        self,
        body: dict[str, Any],
        output: list[dict[str, Any]],
        scripted: Scripted | None,
        status: str = "completed",
    ) -> AsyncIterator[bytes]:
        events = stream_events(body, output, status, self._responses_usage())
        frames = [
            b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
            for e in events
        ]
        async for frame in self._paced(frames, scripted):
            yield frame

    async def _paced(self, frames: list[bytes], scripted: Scripted | None) -> AsyncIterator[bytes]:
        """Send the frames, as scripted: each after a pause, or cut after a few."""
        done = False
        try:
            for i, frame in enumerate(frames):
                if (
                    scripted
                    and scripted.cut_stream_after is not None
                    and i >= scripted.cut_stream_after
                ):
                    done = True
                    raise ConnectionResetError("scripted cut")
                if scripted and scripted.chunk_delay_s:
                    await asyncio.sleep(scripted.chunk_delay_s)
                yield frame
                await asyncio.sleep(0)
            done = True
        finally:
            if not done:
                self.disconnects += 1

    # ---- embeddings ---------------------------------------------------------------------
    async def _embeddings(self, request: Request) -> Response:
        body, error, _ = await self._receive(request)
        if error:
            return error
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if inputs and isinstance(inputs[0], int):
            inputs = [inputs]
        dims = body.get("dimensions") or 8
        data = []
        for index, _text in enumerate(inputs):
            vector = [round((index + 1) * 0.01 * (d + 1), 6) for d in range(dims)]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = 5 * len(inputs)
        payload = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Response(orjson.dumps(payload), media_type="application/json")


def _error(status: int, message: str, type_: str, code: str | None) -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response(orjson.dumps(body), status, media_type="application/json")
