"""A fake upstream (a real ASGI app, tests/fakes/) behind httpx's transport interface, so
the gateway calls it in-process instead of over a socket; and the one place that puts
such a transport under a gateway app's upstream pools.

httpx's own ASGITransport reads the whole answer before returning it, which a gateway
relaying a stream must not see: this one hands over the status and headers as soon as
the app sends them and the body piece by piece as it is sent, and it keeps what a
socket does that the gateway depends on: the request's read timeout between pieces
(httpx.ReadTimeout), an app that fails in the middle of its body a broken connection
(httpx.ReadError), an app that fails before answering a 500 (as uvicorn sends), and an
answer closed early a client that hung up (the app's receive() says http.disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message

_END = object()


class ASGIUpstream(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests = 0  # how many came this way (a test can tell it was not a socket)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        timeout = request.extensions.get("timeout", {}).get("read")
        body = await request.aread()
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        pieces: asyncio.Queue[object] = asyncio.Queue()
        hung_up = asyncio.Event()
        request_sent = False

        async def receive() -> Message:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await hung_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.set_result(message)
            elif message["type"] == "http.response.body":
                pieces.put_nowait(message.get("body", b""))
                if not message.get("more_body", False):
                    pieces.put_nowait(_END)

        async def run() -> None:
            try:
                await self.app(_scope(request), receive, send)
            except Exception as exc:
                if not started.done():
                    started.set_exception(exc)
                else:
                    pieces.put_nowait(exc)
            finally:
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no answer"))
                pieces.put_nowait(_END)

        task = asyncio.create_task(run())
        try:
            start = await asyncio.wait_for(asyncio.shield(started), timeout)
        except TimeoutError:
            await _stop(task, hung_up)
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from None
        except Exception:  # the app failed before answering: what uvicorn sends then
            return httpx.Response(
                500,
                headers=[(b"content-type", b"text/plain; charset=utf-8")],
                content=b"Internal Server Error",
                request=request,
            )
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_Body(request, pieces, task, hung_up, timeout),
            request=request,
        )


class _Body(httpx.AsyncByteStream):
    def __init__(
        self,
        request: httpx.Request,
        pieces: asyncio.Queue[object],
        task: asyncio.Task[None],
        hung_up: asyncio.Event,
        timeout: float | None,
    ) -> None:
        self._request = request
        self._pieces = pieces
        self._task = task
        self._hung_up = hung_up
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            try:
                piece = await asyncio.wait_for(self._pieces.get(), self._timeout)
            except TimeoutError:
                raise httpx.ReadTimeout(
                    "timed out reading the body", request=self._request
                ) from None
            if piece is _END:
                return
            if isinstance(piece, BaseException):
                raise httpx.ReadError(
                    "the upstream closed the connection mid-answer", request=self._request
                )
            assert isinstance(piece, bytes)
            if piece:
                yield piece

    async def aclose(self) -> None:
        await _stop(self._task, self._hung_up)


async def _stop(task: asyncio.Task[None], hung_up: asyncio.Event) -> None:
    """Tell the app the client left; give it a moment to see it, then end it."""
    hung_up.set()
    if not task.done():
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), 1.0)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _scope(request: httpx.Request) -> dict[str, Any]:
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers.raw],
        "server": (url.host, url.port or 80),
        "client": ("127.0.0.1", 50000),
    }


def mount_upstreams(app: FastAPI, upstreams: Mapping[str, ASGIApp]) -> None:
    """Put each provider's fake (by provider name) under the gateway app's upstream pools,
    before the app starts: its calls to that provider go to the fake in-process. Built on
    gateway.upstream.client.Upstreams.mount."""
    pools = app.state.gateway.upstreams
    for provider, upstream in upstreams.items():
        pools.mount(provider, ASGIUpstream(upstream))
