"""A fast fake OpenAI upstream for the benchmark: raw asyncio (uvloop) HTTP/1.1, keep-alive.

It speaks the chat completions wire format and nothing more:

- `POST .../chat/completions` unstreamed: a fixed JSON completion with `usage`.
- the same with `"stream": true`: SSE chunks (`data: {...}`), a usage chunk when the
  request asks for `stream_options.include_usage`, then `data: [DONE]`, chunked encoding.
  The first content chunk goes out with the headers at once; the rest follows after
  `--stream-gap-ms`, so a client can tell a relayed first token from a buffered stream.
  A request with `"user": "held"` waits `--held-gap-ms` instead: a stream held open in
  mid-generation (bench/held.py).
- `GET /health`: 200, for readiness checks.

The answers are built once at start; a request costs a header scan and one write, so a
single core serves well over 20k requests/s (`python bench/run.py --phases upstream`).

    python bench/fake_upstream.py --port 9101 [--stream-gap-ms 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal

import orjson

try:
    import uvloop
except ImportError:  # the benchmark still runs, just slower
    uvloop = None

MODEL = "gpt-4o-mini-2024-07-18"
CONTENT = "Hello! How can I help you today?"
PIECES = ["Hello", "!", " How", " can", " I", " help", " you", " today", "?"]
USAGE = {
    "prompt_tokens": 31,
    "completion_tokens": 9,
    "total_tokens": 40,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
CREATED = 1_732_000_000
ID = "chatcmpl-bench0000000000000000000000"


def _completion() -> bytes:
    return orjson.dumps(
        {
            "id": ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": CONTENT,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def _chunk(
    delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True
) -> bytes:
    payload = {
        "id": ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
    }
    if usage is not None or not choices:
        payload["usage"] = usage
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


JSON_BODY = _completion()
JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"x-request-id: req_bench\r\nopenai-processing-ms: 1\r\n"
    b"content-length: %d\r\n\r\n" % len(JSON_BODY)
)
JSON_RESPONSE = JSON_HEAD + JSON_BODY
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"x-request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
)
FIRST = _chunked(_chunk({"role": "assistant", "content": PIECES[0], "refusal": None}))
REST = b"".join(_chunked(_chunk({"content": p})) for p in PIECES[1:]) + _chunked(_chunk({}, "stop"))
USAGE_FRAME = _chunked(_chunk({}, usage=USAGE, choices=False))
END = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
HEALTH = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n{"status":"ok"}'
_NOT_FOUND_BODY = b'{"error":{"message":"not found","type":"invalid_request_error","code":null}}'
NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_NOT_FOUND_BODY), _NOT_FOUND_BODY)
)


class Upstream(asyncio.Protocol):
    __slots__ = ("buffer", "gap", "held_gap", "loop", "transport")

    def __init__(self, gap: float, held_gap: float) -> None:
        self.buffer = b""
        self.gap = gap
        self.held_gap = held_gap
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            length = 0
            at = head.lower().find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                break
            body = buffer[end + 4 : total]
            buffer = buffer[total:]
            self._answer(head, body)
        self.buffer = buffer

    def _answer(self, head: bytes, body: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        if line.startswith(b"POST ") and b"/chat/completions" in line:
            compact = body.replace(b" ", b"")
            if b'"stream":true' not in compact:
                transport.write(JSON_RESPONSE)
                return
            tail = REST + (USAGE_FRAME if b'"include_usage":true' in compact else b"") + END
            gap = self.held_gap if b'"user":"held"' in compact else self.gap
            if gap <= 0:
                transport.write(STREAM_HEAD + FIRST + tail)
            else:
                transport.write(STREAM_HEAD + FIRST)
                self.loop.call_later(gap, self._write, tail)
        elif line.startswith(b"GET /health"):
            transport.write(HEALTH)
        else:
            transport.write(NOT_FOUND)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, gap: float, held_gap: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Upstream(gap, held_gap), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream on http://{host}:{port} (pid {os.getpid()})", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument(
        "--stream-gap-ms",
        type=float,
        default=5.0,
        help="pause between the first streamed chunk and the rest",
    )
    parser.add_argument(
        "--held-gap-ms",
        type=float,
        default=10_000.0,
        help='the same pause for a request with "user": "held"',
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # a held stream is a connection: thousands of them
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if uvloop is not None:
        uvloop.install()
    asyncio.run(serve(args.host, args.port, args.stream_gap_ms / 1000, args.held_gap_ms / 1000))


if __name__ == "__main__":
    main()
