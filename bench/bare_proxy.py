"""The floor: the least a FastAPI + httpx proxy can do, measured beside the gateway.

One route, `POST /v1/chat/completions`: read the body, parse it once (to see `stream`),
forward the bytes to the upstream over one pooled httpx client on the aiohttp transport,
and return the answer's bytes (or relay the stream chunk by chunk). No auth, registry,
policy, metrics or cost: whatever the gateway costs above this is its own overhead.

    python bench/bare_proxy.py --port 9102 --upstream http://127.0.0.1:9101/v1
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
from fastapi import FastAPI, Request
from httpx_aiohttp import AiohttpTransport
from starlette.responses import Response, StreamingResponse

UPSTREAM = os.environ.get("BARE_UPSTREAM", "http://127.0.0.1:9101/v1").rstrip("/")
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
client: httpx.AsyncClient | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global client
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    client = httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=None)
    try:
        yield
    finally:
        await client.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    assert client is not None
    raw = await request.body()
    body = orjson.loads(raw)
    upstream = client.build_request(
        "POST", UPSTREAM + "/chat/completions", content=raw, headers=HEADERS
    )
    if body.get("stream") is True:
        response = await client.send(upstream, stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        return StreamingResponse(
            relay(), status_code=response.status_code, media_type="text/event-stream"
        )
    response = await client.send(upstream)
    return Response(
        response.content, status_code=response.status_code, media_type="application/json"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description="bare FastAPI + httpx proxy (the benchmark's floor)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9102)
    parser.add_argument("--upstream", default=None, help="upstream base URL (env BARE_UPSTREAM)")
    args = parser.parse_args()
    global UPSTREAM
    if args.upstream:
        UPSTREAM = args.upstream.rstrip("/")
    import uvicorn

    # The same server settings as `gateway serve`: uvloop + httptools, no access log.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
