"""The transport under every upstream call: httpx-aiohttp's, minus per-call conversions.

httpx-aiohttp's `AiohttpTransport` turns each `httpx.Request` into an aiohttp call: the
URL back into a string, the headers read out of httpx's `Headers` one by one, a new
`ClientTimeout`, and each response header normalized again into httpx's. None of that
changes between two calls to the same endpoint, so the gateway's calls carry a `Wire`
(in the request's extensions, built once per endpoint: gateway.upstream.client caches
endpoints) with the URL as a string, the headers as aiohttp takes them and the timeout,
and the response headers are taken as aiohttp read them: byte pairs, which is what
httpx's normalization would leave them as. Its exception mapping is the same
(`AIOHTTP_EXC_MAP`), without a context manager per call and per read.

A request without a `Wire` (any other caller) goes through httpx-aiohttp unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
from httpx_aiohttp.transport import AIOHTTP_EXC_MAP, AiohttpResponseStream, AiohttpTransport
from multidict import CIMultiDict

WIRE = "gateway_wire"  # the request extension that holds the Wire
# The response extension that holds aiohttp's own body reader, for gateway.upstream.body
# to read from with nothing in between (a response from any other transport has none).
READER = "gateway_reader"
CHUNK = 16 * 1024  # httpx-aiohttp's read size


@dataclass(frozen=True, slots=True)
class Wire:
    url: str
    headers: CIMultiDict[str]
    timeout: aiohttp.ClientTimeout


def wire_for(url: str, headers: dict[str, str], timeout: httpx.Timeout) -> Wire:
    """As httpx-aiohttp maps httpx's timeouts: connect -> sock_connect, read -> sock_read,
    pool -> connect (aiohttp's wait for a connection and its connect together)."""
    return Wire(
        url,
        CIMultiDict(headers),
        aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        ),
    )


def mapped(exc: Exception) -> Exception | None:
    """The httpx exception httpx-aiohttp raises for this aiohttp one, or None (left as is):
    its `map_aiohttp_exceptions`, the most specific match winning."""
    found: type[Exception] | None = None
    for source, target in AIOHTTP_EXC_MAP.items():
        if isinstance(exc, source) and (found is None or issubclass(target, found)):
            found = target
    return None if found is None else found(str(exc))


def headers_of(raw: tuple[tuple[bytes, bytes], ...]) -> httpx.Headers:
    """aiohttp's raw header pairs as httpx's Headers, as `httpx.Headers(raw)` makes them
    (byte pairs are kept as they are, a lower-cased name beside each) without its two
    function calls per header."""
    headers = httpx.Headers()
    headers._list = [(name, name.lower(), value) for name, value in raw]
    return headers


class PooledTransport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wire = request.extensions.get(WIRE)
        if not isinstance(wire, Wire):
            return await super().handle_async_request(request)
        session = self.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self.client = self.get_client()
        content = request.content
        try:
            response = await session.request(
                request.method,
                wire.url,
                headers=wire.headers,
                data=content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=wire.timeout,
            )
        except Exception as exc:
            error = mapped(exc)
            if error is None:
                raise
            raise error from exc
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1", READER: response.content}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            response.status,
            headers=headers_of(response.raw_headers),
            stream=ResponseStream(response),
            request=request,
            extensions=extensions,
        )


class ResponseStream(AiohttpResponseStream):
    """httpx-aiohttp's response stream (a subclass: whatever knows that one knows this),
    its exceptions mapped the same way without a context manager."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._aiohttp_response.content.iter_chunked(CHUNK):
                yield chunk
        except Exception as exc:
            error = mapped(exc)
            if error is None:
                raise
            raise error from exc

    async def aclose(self) -> None:
        try:
            await self._aiohttp_response.__aexit__(None, None, None)
        except Exception as exc:
            error = mapped(exc)
            if error is None:
                raise
            raise error from exc
