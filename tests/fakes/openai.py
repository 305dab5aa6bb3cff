"""A fake OpenAI API (chat completions, responses, embeddings) speaking the documented
wire format field for field, served for real on 127.0.0.1 by tests.fakes.server.

It records every request it receives and can be scripted to answer errors or break.
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

USAGE = {"prompt_tokens": 1200, "cached_tokens": 200, "completion_tokens": 300, "reasoning_tokens": 100}


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
    def __init__(self, api_key: str = "sk-test-fake-openai-key", text: str = "Hello from the fake upstream") -> None:
        self.api_key = api_key
        self.text = text
        self.usage = dict(USAGE)
        self.requests: list[Received] = []
        self.script: list[Scripted] = []
        self.disconnects = 0  # streams the gateway stopped reading before their end
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
        ])

    @property
    def last(self) -> Received:
        return self.requests[-1]

    async def _receive(self, request: Request) -> tuple[Any, Response | None, Scripted | None]:
        body = orjson.loads(await request.body())
        self.requests.append(Received(request.url.path, dict(request.headers), body))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return body, _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), None
        scripted = self.script.pop(0) if self.script else None
        if scripted and scripted.delay_s:
            deadline = time.monotonic() + scripted.delay_s
            while time.monotonic() < deadline:  # the "model" thinks, watching the connection
                await asyncio.sleep(0.02)
                if await request.is_disconnected():
                    self.disconnects += 1
                    return body, Response(status_code=499), None
        if scripted and scripted.raw is not None:
            return body, Response(scripted.raw, scripted.status, scripted.headers,
                                  media_type=scripted.content_type), None
        if scripted and scripted.status >= 400:
            return body, Response(orjson.dumps(scripted.body), scripted.status, scripted.headers,
                                  media_type="application/json"), None
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
                "reasoning_tokens": u["reasoning_tokens"], "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
        }

    def _wants_tool(self, body: dict[str, Any]) -> dict[str, Any] | None:
        tools = body.get("tools") or []
        messages = body.get("messages") or []
        if not tools or body.get("tool_choice") == "none" or (messages and messages[-1].get("role") == "tool"):
            return None
        tool = tools[0]
        return {"name": tool["function"]["name"], "arguments": '{"city":"Paris"}'}

    async def _chat(self, request: Request) -> Response:
        body, error, scripted = await self._receive(request)
        if error:
            return error
        call = self._wants_tool(body)
        base = {"id": "chatcmpl-fake123", "created": int(time.time()), "model": body["model"],
                "system_fingerprint": "fp_fake", "service_tier": "default"}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(self._chat_stream(base, call, include_usage, scripted),
                                     media_type="text/event-stream")
        message: dict[str, Any] = {"role": "assistant", "content": None if call else self.text,
                                   "refusal": None, "annotations": []}
        if call:
            message["tool_calls"] = [{"id": "call_fake1", "type": "function", "function": call}]
        payload = {**base, "object": "chat.completion", "choices": [{
            "index": 0, "message": message, "logprobs": None,
            "finish_reason": "tool_calls" if call else "stop",
        }], "usage": self._chat_usage()}
        return Response(orjson.dumps(payload), media_type="application/json")

    async def _chat_stream(self, base: dict[str, Any], call: dict[str, Any] | None, include_usage: bool,
                           scripted: Scripted | None) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out = {**base, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            if include_usage:
                out["usage"] = None
            return out

        chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if call:
            chunks.append(chunk({"tool_calls": [{"index": 0, "id": "call_fake1", "type": "function",
                                                 "function": {"name": call["name"], "arguments": ""}}]}))
            for piece in ('{"city":', '"Paris"}'):
                chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            chunks.append(chunk({}, "tool_calls"))
        else:
            words = self.text.split(" ")
            for i, word in enumerate(words):
                chunks.append(chunk({"content": word if i == 0 else " " + word}))
            chunks.append(chunk({}, "stop"))
        if include_usage:
            chunks.append({**base, "object": "chat.completion.chunk", "choices": [], "usage": self._chat_usage()})
        frames = [b"data: " + orjson.dumps(item) + b"\n\n" for item in chunks] + [b"data: [DONE]\n\n"]
        async for frame in self._paced(frames, scripted):
            yield frame

    # ---- responses ----------------------------------------------------------------------
    def _responses_usage(self) -> dict[str, Any]:
        u = self.usage
        return {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": u["cached_tokens"]},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": u["reasoning_tokens"]},
            "total_tokens": u["prompt_tokens"] + u["completion_tokens"],
        }

    def _response(self, body: dict[str, Any], status: str, output: list[dict[str, Any]],
                  usage: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": "resp_fake123", "object": "response", "created_at": int(time.time()), "status": status,
            "background": False, "error": None, "incomplete_details": None,
            "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"], "output": output, "parallel_tool_calls": True,
            "previous_response_id": None, "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []), "top_p": body.get("top_p", 1.0), "truncation": "disabled",
            "usage": usage, "user": None, "metadata": body.get("metadata") or {},
        }

    def _output(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        tools = body.get("tools") or []
        items = body.get("input") if isinstance(body.get("input"), list) else []
        answered = any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items)
        if tools and not answered and body.get("tool_choice") != "none":
            return [{"type": "function_call", "id": "fc_fake1", "call_id": "call_fake1",
                     "name": tools[0]["name"], "arguments": '{"city":"Paris"}', "status": "completed"}]
        return [{"type": "message", "id": "msg_fake1", "status": "completed", "role": "assistant",
                 "content": [{"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}]}]

    async def _responses(self, request: Request) -> Response:
        body, error, scripted = await self._receive(request)
        if error:
            return error
        output = self._output(body)
        if body.get("stream"):
            return StreamingResponse(self._responses_stream(body, output, scripted), media_type="text/event-stream")
        return Response(orjson.dumps(self._response(body, "completed", output, self._responses_usage())),
                        media_type="application/json")

    async def _responses_stream(self, body: dict[str, Any], output: list[dict[str, Any]],
                                scripted: Scripted | None) -> AsyncIterator[bytes]:
        events: list[dict[str, Any]] = []
        start = self._response(body, "in_progress", [], None)
        events.append({"type": "response.created", "response": start})
        events.append({"type": "response.in_progress", "response": start})
        for index, item in enumerate(output):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                events.append({"type": "response.output_item.added", "output_index": index,
                               "item": {**item, "status": "in_progress", "content": []}})
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                events.append({"type": "response.content_part.added", "item_id": item["id"],
                               "output_index": index, "content_index": 0, "part": part})
                for i, word in enumerate(text.split(" ")):
                    events.append({"type": "response.output_text.delta", "item_id": item["id"],
                                   "output_index": index, "content_index": 0,
                                   "delta": word if i == 0 else " " + word, "logprobs": []})
                events.append({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                               "content_index": 0, "text": text, "logprobs": []})
                events.append({"type": "response.content_part.done", "item_id": item["id"],
                               "output_index": index, "content_index": 0, "part": item["content"][0]})
            else:
                events.append({"type": "response.output_item.added", "output_index": index,
                               "item": {**item, "arguments": "", "status": "in_progress"}})
                events.append({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                               "output_index": index, "delta": item["arguments"]})
                events.append({"type": "response.function_call_arguments.done", "item_id": item["id"],
                               "output_index": index, "arguments": item["arguments"]})
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        events.append({"type": "response.completed",
                       "response": self._response(body, "completed", output, self._responses_usage())})
        for seq, event in enumerate(events):
            event["sequence_number"] = seq
        frames = [b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events]
        async for frame in self._paced(frames, scripted):
            yield frame

    async def _paced(self, frames: list[bytes], scripted: Scripted | None) -> AsyncIterator[bytes]:
        """Send the frames, as scripted: each after a pause, or cut after a few."""
        done = False
        try:
            for i, frame in enumerate(frames):
                if scripted and scripted.cut_stream_after is not None and i >= scripted.cut_stream_after:
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
        payload = {"object": "list", "data": data, "model": body["model"],
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return Response(orjson.dumps(payload), media_type="application/json")


def _error(status: int, message: str, type_: str, code: str | None) -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response(orjson.dumps(body), status, media_type="application/json")
