"""Time to first token for streamed chat: a small asyncio client wrk cannot replace.

One keep-alive connection, requests one after another (so nothing queues), for a fixed
time or count. For each request it records the time from writing the request to the
first body bytes holding a `"delta"` (the first token), and to the end of the stream.
It speaks just enough HTTP/1.1: a status line, headers, a chunked or sized body.

    python bench/ttft.py http://127.0.0.1:8080/v1/chat/completions --body body.json \\
        --duration 4 [--auth "Bearer KEY"]

Prints one JSON object: counts and percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:
    uvloop = None


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, float, float]:
        """Send one request, read its answer whole: (status, first-token s, total s)."""
        reader = self.reader
        start = time.perf_counter()
        self.writer.write(request)
        status_line = await reader.readline()
        status = int(status_line.split(b" ", 2)[1])
        length, chunked = None, False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        first = 0.0
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readline()  # the blank line after the last chunk
                    break
                data = await reader.readexactly(size + 2)
                if not first and b'"delta"' in data:
                    first = time.perf_counter() - start
        elif length:
            data = await reader.readexactly(length)
            if b'"delta"' in data:
                first = time.perf_counter() - start
        return status, first, time.perf_counter() - start


def _request(url: str, body: bytes, auth: str | None) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if auth:
        head += f"Authorization: {auth}\r\n"
    return host, port, head.encode() + b"\r\n" + body


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


async def measure(
    url: str, body: bytes, auth: str | None, duration: float, limit: int, warmup: int
) -> dict:
    host, port, request = _request(url, body, auth)
    reader, writer = await asyncio.open_connection(host, port)
    conn = _Conn(reader, writer)
    for _ in range(warmup):
        await conn.exchange(request)
    firsts: list[float] = []
    totals: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    while time.perf_counter() < deadline and len(totals) + errors < limit:
        status, first, total = await conn.exchange(request)
        if status != 200 or not first:
            errors += 1
            continue
        firsts.append(first)
        totals.append(total)
    writer.close()
    if not firsts:
        return {"requests": 0, "errors": errors}
    return {
        "requests": len(firsts),
        "errors": errors,
        "ttft_ms": {
            "mean": round(statistics.fmean(firsts) * 1000, 3),
            "p50": _ms(firsts, 0.5),
            "p90": _ms(firsts, 0.9),
            "p99": _ms(firsts, 0.99),
        },
        "total_ms": {"p50": _ms(totals, 0.5), "p99": _ms(totals, 0.99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="time to first token for streamed chat")
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help="file with the JSON request body")
    parser.add_argument("--auth", default=None, help="Authorization header value")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--requests", type=int, default=100_000, help="stop after this many")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    if uvloop is not None:
        uvloop.install()
    with open(args.body, "rb") as f:
        body = f.read()
    result = asyncio.run(
        measure(args.url, body, args.auth, args.duration, args.requests, args.warmup)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
