"""An upstream whose streams can stop where a test says: ended, held open, or reset.

The HTTP fakes (tests.fakes.openai, tests.fakes.gemini) are Starlette apps: they cannot
keep a stream's last bytes back while the connection stays up, nor reset a connection at
the TCP level. This one speaks HTTP/1.1 over a bare asyncio server so it can do both:

    fake = HeldUpstream()
    fake.plan(Plan(tokens=None, then="hold"))   # every token and the usage, then wait
    fake.plan(Plan(tokens=5, then="reset"))     # five tokens, no usage, then a TCP RST
    with fake:                                  # serves on 127.0.0.1 in a thread
        fake.url                                # http://127.0.0.1:PORT
    fake.held.wait(5)                           # it reached the hold
    fake.left.wait(5)                           # the gateway closed the connection while held

Streams follow the providers' wire formats field for field, as the other fakes do: chat
completion chunks (`data: {json}\\n\\n`, `data: [DONE]`), Responses events (`event:` and
`data:` lines with sequence numbers, the end of the body being the end of the stream),
Gemini's native `:streamGenerateContent?alt=sse` (`data: {json}\\r\\n\\r\\n`, no [DONE],
running `usageMetadata` on every chunk) and the Gemini OpenAI-compatible surface (chat
chunks, `[DONE]`, thoughts counted only in `total_tokens`). Unstreamed calls get the same
answer whole.

The answer is `TOKENS`, one o200k token each, so a test knows how many output tokens were
sent before any cut. The usage the fake reports is `USAGE`: deliberately not the text's
own count, so a test can tell a reported usage from the gateway's estimate.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson

# Each one token in o200k_base, and so are their joins (checked by tests/unit/test_received.py).
TOKENS = (
    "Hello",
    " from",
    " the",
    " billing",
    " fake",
    " upstream",
    " every",
    " token",
    " counts",
    " here",
    " today",
    " again",
)
# The usage reported: input 1500 of which 500 cached, output 40 of which 28 reasoning
# (so 12 visible: the TOKENS).
USAGE = {"input": 1500, "cached": 500, "output": 40, "reasoning": 28}
HOLD_S = 10.0  # longest a hold lasts before the fake gives up and closes

Then = Literal["end", "hold", "reset"]


@dataclass
class Plan:
    """How the next answer goes. `tokens`: text tokens sent; None sends them all, then the
    finish and the usage. `then`: what follows: the stream's normal end, a hold (the end
    kept back until the gateway hangs up), or a TCP reset."""

    tokens: int | None = None
    then: Then = "end"


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


class HeldUpstream:
    def __init__(self) -> None:
        self.plans: deque[Plan] = deque()
        self.requests: list[Seen] = []
        self.held = threading.Event()  # set when a stream reaches its hold
        self.left = threading.Event()  # set when the gateway closes a held stream
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def plan(self, *plans: Plan) -> None:
        self.plans.extend(plans)

    def reset(self) -> None:
        self.plans.clear()
        self.requests.clear()
        self.held.clear()
        self.left.clear()

    # ------------------------------------------------------------------ serving

    def __enter__(self) -> HeldUpstream:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", 0), self._loop
        )
        self._server = future.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the gateway went away between requests
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is done."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        _method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        data = orjson.loads(body) if body else None
        self.requests.append(Seen(parts.path, query, headers, data))
        plan = self.plans.popleft() if self.plans else Plan()
        frames, end = _answer(parts.path, query, data if isinstance(data, dict) else {}, plan)
        if frames is None and plan.then == "hold":  # the model "thinks" until the gateway leaves
            return await self._hold(reader)
        if frames is None:  # unstreamed: the whole answer
            payload = orjson.dumps(end)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n" % len(payload) + payload
            )
            await writer.drain()
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for frame in frames:
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            await writer.drain()
            await asyncio.sleep(0.005)  # one frame per read, as a model produces them
        if plan.then == "reset":
            await asyncio.sleep(0.1)  # the gateway reads what was sent before the RST discards it
            self.resets += 1
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # linger 0: the kernel sends RST, not FIN
            return False
        if plan.then == "hold":
            return await self._hold(reader)
        tail = b"".join(b"%x\r\n%s\r\n" % (len(frame), frame) for frame in end)
        writer.write(tail + b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _hold(self, reader: asyncio.StreamReader) -> bool:
        self.held.set()
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:
            try:
                if not await asyncio.wait_for(reader.read(1), 0.05):
                    self.left.set()  # the gateway closed its side: the upstream call was stopped
                    return False
            except TimeoutError:
                continue
        return False


# ---------------------------------------------------------------------- wire formats


def _answer(
    path: str, query: dict[str, str], body: dict[str, Any], plan: Plan
) -> tuple[list[bytes] | None, Any]:
    """(frames to send, what ends the stream) for a stream; (None, the JSON body) for a whole answer."""
    n = len(TOKENS) if plan.tokens is None else plan.tokens
    complete = plan.tokens is None
    if path.endswith(":streamGenerateContent"):
        return _gemini_stream(path, n, complete), []
    if path.endswith(":generateContent"):
        return None, _gemini_whole(path)
    if path.endswith("/responses"):
        if body.get("stream"):
            return _responses_stream(body, n, complete), []
        return None, _response(
            body, "completed", [_message_item("".join(TOKENS))], _responses_usage()
        )
    compat = path.startswith("/v1beta/openai/")
    if body.get("stream"):
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _chat_stream(body, n, complete, usage, compat), [b"data: [DONE]\n\n"]
    return None, _chat_whole(body, compat)


def _chat_usage(compat: bool) -> dict[str, Any]:
    u = USAGE
    if compat:  # Gemini's compat surface: thoughts only in the total, no cache details
        return {
            "completion_tokens": u["output"] - u["reasoning"],
            "prompt_tokens": u["input"],
            "total_tokens": u["input"] + u["output"],
        }
    return {
        "prompt_tokens": u["input"],
        "completion_tokens": u["output"],
        "total_tokens": u["input"] + u["output"],
        "prompt_tokens_details": {"cached_tokens": u["cached"], "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u["reasoning"],
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_base(body: dict[str, Any], compat: bool) -> dict[str, Any]:
    if compat:
        return {
            "id": "fake-compat-id",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": body.get("model"),
        }
    return {
        "id": "chatcmpl-held123",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
        "service_tier": "default",
        "system_fingerprint": "fp_held",
    }


def _chat_stream(
    body: dict[str, Any], n: int, complete: bool, include_usage: bool, compat: bool
) -> list[bytes]:
    base = _chat_base(body, compat)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta}
        if not compat:
            choice.update(logprobs=None, finish_reason=finish)
        elif finish:
            choice["finish_reason"] = finish
        out = {**base, "choices": [choice]}
        if include_usage and not compat:
            out["usage"] = None
        return out

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})] if not compat else []
    for i, token in enumerate(TOKENS[:n]):
        delta: dict[str, Any] = {"content": token}
        if compat and i == 0:
            delta = {"role": "assistant", **delta}
        chunks.append(chunk(delta))
    if complete:
        chunks.append(chunk({}, "stop"))
        if include_usage:
            chunks.append({**base, "choices": [], "usage": _chat_usage(compat)})
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]


def _chat_whole(body: dict[str, Any], compat: bool) -> dict[str, Any]:
    base = _chat_base(body, compat)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(TOKENS)}
    if not compat:
        message.update(refusal=None, annotations=[])
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
    if not compat:
        choice["logprobs"] = None
    return {**base, "object": "chat.completion", "choices": [choice], "usage": _chat_usage(compat)}


def _responses_usage() -> dict[str, Any]:
    u = USAGE
    return {
        "input_tokens": u["input"],
        "input_tokens_details": {"cached_tokens": u["cached"]},
        "output_tokens": u["output"],
        "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
        "total_tokens": u["input"] + u["output"],
    }


def _message_item(text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_held1",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def _response(
    body: dict[str, Any], status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": "resp_held123",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def _responses_stream(body: dict[str, Any], n: int, complete: bool) -> list[bytes]:
    text = "".join(TOKENS)
    item = _message_item(text)
    start = _response(body, "in_progress", [], None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
        },
    ]
    for token in TOKENS[:n]:
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": token,
                "logprobs": [],
            }
        )
    if complete:
        events += [
            {
                "type": "response.output_text.done",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
            {
                "type": "response.content_part.done",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "part": item["content"][0],
            },
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {
                "type": "response.completed",
                "response": _response(body, "completed", [item], _responses_usage()),
            },
        ]
    for seq, event in enumerate(events):
        event["sequence_number"] = seq
    return [
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    ]


def _gemini_model(path: str) -> str:
    return path.rsplit("/", 1)[-1].split(":", 1)[0]


def _gemini_final_usage() -> dict[str, Any]:
    u = USAGE
    visible = u["output"] - u["reasoning"]
    return {
        "promptTokenCount": u["input"],
        "candidatesTokenCount": visible,
        "totalTokenCount": u["input"] + u["output"],
        "cachedContentTokenCount": u["cached"],
        "thoughtsTokenCount": u["reasoning"],
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u["input"]}],
    }


def _gemini_stream(path: str, n: int, complete: bool) -> list[bytes]:
    model = _gemini_model(path)
    running = {"promptTokenCount": USAGE["input"], "totalTokenCount": USAGE["input"]}
    chunks = []
    for i, token in enumerate(TOKENS[:n]):
        last = complete and i == n - 1
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": [{"text": token}]},
            "index": 0,
        }
        if last:
            candidate["finishReason"] = "STOP"
        chunks.append(
            {
                "candidates": [candidate],
                "usageMetadata": _gemini_final_usage() if last else running,
                "modelVersion": model,
                "responseId": "held-stream-id",
            }
        )
    return [b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks]


def _gemini_whole(path: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "".join(TOKENS)}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": _gemini_final_usage(),
        "modelVersion": _gemini_model(path),
        "responseId": "held-response-id",
    }
