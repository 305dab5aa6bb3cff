"""tests/fakes/transport.py behaves as a socket does where the gateway depends on it:
pieces as they are sent, the read timeout, a cut body, a failed app, a client leaving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.transport import ASGIUpstream

left: list[str] = []


async def _stream(request: Request) -> Response:
    pause = float(request.query_params.get("pause", "0"))
    cut = request.query_params.get("cut") == "1"

    async def pieces() -> AsyncIterator[bytes]:
        try:
            for n in range(3):
                yield f"piece {n}\n".encode()
                if cut and n == 1:
                    raise ConnectionResetError("cut")
                await asyncio.sleep(pause)
        except asyncio.CancelledError:
            left.append("cancelled")
            raise

    return StreamingResponse(pieces(), media_type="text/plain")


async def _echo(request: Request) -> Response:
    return Response(await request.body(), headers={"x-echo": "1"})


async def _broken(request: Request) -> Response:
    raise RuntimeError("the app fails before it answers")


APP = Starlette(
    routes=[
        Route("/stream", _stream),
        Route("/echo", _echo, methods=["POST"]),
        Route("/broken", _broken),
    ]
)


def _send(path: str, read: float | None = 5.0, method: str = "GET") -> httpx.Request:
    return httpx.Request(
        method,
        f"http://upstream.test{path}",
        content=b"hello" if method == "POST" else None,
        extensions={"timeout": {"read": read}},
    )


async def test_a_body_and_its_headers_arrive_as_sent() -> None:
    response = await ASGIUpstream(APP).handle_async_request(_send("/echo", method="POST"))
    assert response.status_code == 200 and response.headers["x-echo"] == "1"
    assert await response.aread() == b"hello"


async def test_a_stream_arrives_piece_by_piece_before_it_ends() -> None:
    response = await ASGIUpstream(APP).handle_async_request(_send("/stream?pause=0.3"))
    pieces = response.aiter_raw().__aiter__()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await pieces.__anext__() == b"piece 0\n"
    assert loop.time() - start < 0.25  # not held back until the whole body is there
    rest = [piece async for piece in pieces]
    assert rest == [b"piece 1\n", b"piece 2\n"]


async def test_the_read_timeout_applies_between_pieces() -> None:
    response = await ASGIUpstream(APP).handle_async_request(_send("/stream?pause=2", read=0.2))
    with pytest.raises(httpx.ReadTimeout):
        async for _ in response.aiter_raw():
            pass


async def test_a_body_cut_by_the_app_is_a_read_error() -> None:
    response = await ASGIUpstream(APP).handle_async_request(_send("/stream?cut=1"))
    got = []
    with pytest.raises(httpx.ReadError):
        async for piece in response.aiter_raw():
            got.append(piece)
    assert got == [b"piece 0\n", b"piece 1\n"]


async def test_an_app_that_fails_before_answering_is_a_500() -> None:
    response = await ASGIUpstream(APP).handle_async_request(_send("/broken"))
    assert response.status_code == 500
    assert await response.aread() == b"Internal Server Error"


async def test_closing_an_answer_early_is_a_client_that_left() -> None:
    left.clear()
    response = await ASGIUpstream(APP).handle_async_request(_send("/stream?pause=5"))
    pieces = response.aiter_raw().__aiter__()
    assert await pieces.__anext__() == b"piece 0\n"
    await response.aclose()
    assert left == ["cancelled"]  # the app's stream was ended, not left running
