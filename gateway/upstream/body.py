"""Reading an upstream's body without trusting it: inflated with a cap, never past it.

gateway.upstream.client reads every answer through here: `read_capped` for a whole
answer, `decoded` under its stream reader. A compressed body is inflated step by step
with zlib's output bound, so a bomb is refused after at most the cap is held in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import aiohttp
import httpx

from gateway.errors import Scrubber, UpstreamError
from gateway.upstream.transport import READER

MB = 1024 * 1024
PIECE_BYTES = 16 * 1024  # as httpx-aiohttp reads: at most this much per piece


class TooLarge(Exception):
    """The upstream sent more than the cap allows."""


class _Inflater:
    """Undoes a `content-encoding` the gateway asked for, never yielding past a cap.

    zlib's `max_length` bounds each step's output, so a bomb is refused after at most
    the cap is held in memory, not after it has been inflated whole.
    """

    __slots__ = ("_deflate", "_z")

    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._z = zlib.decompressobj(zlib.MAX_WBITS if self._deflate else 16 + zlib.MAX_WBITS)

    def inflate(self, data: bytes, room: int) -> tuple[bytes, bytes]:
        """(output of at most `room` + 1 bytes, input still to inflate)."""
        try:
            out = self._z.decompress(data, room + 1)
        except zlib.error:
            if not self._deflate:
                raise
            # "deflate" is raw deflate for some servers (as httpx also allows).
            self._deflate = False
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._z.decompress(data, room + 1)
        return out, self._z.unconsumed_tail


def _inflater(response: httpx.Response) -> _Inflater | None:
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("gzip" if encoding == "x-gzip" else encoding)
    raise UpstreamError(
        "The upstream answered in a content-encoding the gateway did not ask for.",
        code="upstream_invalid_response",
        reason="invalid_response",
    )


def decoded(response: httpx.Response, cap: int) -> AsyncIterator[bytes]:
    """The body's bytes, decoded, in pieces of at most `cap` + 1 bytes once inflated.

    Not compressed (what upstreams mostly answer): the transport's own pieces, with no
    generator in between. An encoding the gateway did not ask for raises here, at once."""
    inflater = _inflater(response)
    if inflater is None:
        reader = response.extensions.get(READER)
        if isinstance(reader, aiohttp.StreamReader):
            return _Pieces(reader)
        return response.aiter_raw()
    return _inflated(response, inflater, cap)


class _Pieces:
    """The body as aiohttp's reader has it, read with no generator in between.

    httpx's `aiter_raw` over the transport's stream (gateway.upstream.transport) is two
    async generators, a `@contextmanager` and aiohttp's chunk iterator, each alive for a
    whole stream (and each generator in the event loop's weak set of generators): about
    1.5 KB of a held stream. aiohttp's own errors come through as they are, unmapped;
    gateway.upstream.client's `transport_error` decides by the same aiohttp cause.
    """

    __slots__ = ("_reader",)

    def __init__(self, reader: aiohttp.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        piece = await self._reader.read(PIECE_BYTES)
        if not piece:
            raise StopAsyncIteration
        return piece


async def _inflated(
    response: httpx.Response, inflater: _Inflater, cap: int
) -> AsyncIterator[bytes]:
    async for raw in response.aiter_raw():
        pending = raw
        while pending:
            try:
                out, pending = inflater.inflate(pending, cap)
            except zlib.error:
                raise UpstreamError(
                    "The upstream's compressed answer is corrupt.",
                    code="upstream_invalid_response",
                    reason="invalid_response",
                ) from None
            if out:
                yield out
            elif pending:
                break  # no progress: the rest is held in the decompressor's own buffer


def too_large(what: str, cap: int) -> UpstreamError:
    return UpstreamError(
        f"The upstream's {what} is larger than the gateway's limit of {cap // MB} MB.",
        code="upstream_response_too_large",
        reason="response_too_large",
    )


async def read_capped(
    response: httpx.Response, cap: int, scrubber: Scrubber, *, lenient: bool = False
) -> bytes:
    """The whole body, decoded and scrubbed; past `cap`, a 502 (or, `lenient`, for an
    error answer read only for its message: empty)."""
    parts: list[bytes] = []
    size = 0
    try:
        async for piece in decoded(response, cap):
            size += len(piece)
            if size > cap:
                raise TooLarge
            parts.append(piece)
    except (TooLarge, UpstreamError):
        await response.aclose()
        if lenient:
            return b""
        raise too_large("answer", cap) from None
    await response.aclose()  # the connection back to its pool (httpx's aiter_raw closes too)
    return scrubber.whole(parts[0] if len(parts) == 1 else b"".join(parts))
