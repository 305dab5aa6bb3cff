"""The pooled transport's shortcuts give what httpx-aiohttp itself gives: the same
exception for each aiohttp one, the same headers, the same timeouts."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from httpx_aiohttp.transport import map_aiohttp_exceptions

from gateway.upstream.transport import headers_of, mapped, wire_for

CONNECTION = aiohttp.client_reqrep.ConnectionKey("h", 1, False, False, None, None, None)
ERRORS: list[Exception] = [
    aiohttp.ServerTimeoutError("read timed out"),
    aiohttp.SocketTimeoutError("socket read"),
    aiohttp.ClientConnectionError("gone"),
    aiohttp.ClientConnectorError(CONNECTION, OSError(111, "refused")),
    aiohttp.ClientPayloadError("short body"),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientOSError(104, "reset"),
]


def _theirs(exc: Exception) -> BaseException:
    try:
        with map_aiohttp_exceptions():
            raise exc
    except BaseException as raised:
        return raised
    raise AssertionError("map_aiohttp_exceptions swallowed the exception")


@pytest.mark.parametrize("exc", ERRORS, ids=lambda e: type(e).__name__)
def test_an_aiohttp_error_maps_to_what_httpx_aiohttp_raises(exc: Exception) -> None:
    ours, theirs = mapped(exc), _theirs(exc)
    assert ours is not None
    assert type(ours) is type(theirs)
    assert str(ours) == str(theirs)


def test_an_unmapped_error_is_left_as_it_is() -> None:
    exc = ValueError("not aiohttp's")
    assert mapped(exc) is None
    assert _theirs(exc) is exc


def test_response_headers_are_what_httpx_makes_of_the_raw_pairs() -> None:
    raw = ((b"Content-Type", b"application/json"), (b"X-Req", b"caf\xe9"), (b"x-req", b"2"))
    ours, theirs = headers_of(raw), httpx.Headers(list(raw))
    assert ours.raw == theirs.raw
    assert ours.multi_items() == theirs.multi_items()
    assert ours.get_list("x-req") == ["caf\xe9", "2"]


def test_the_wire_timeouts_map_as_httpx_aiohttp_maps_them() -> None:
    wire = wire_for(
        "http://h/v1", {"authorization": "Bearer k"}, httpx.Timeout(60, connect=5, pool=5)
    )
    assert (wire.timeout.sock_connect, wire.timeout.sock_read, wire.timeout.connect) == (5, 60, 5)
    assert wire.headers["Authorization"] == "Bearer k"
