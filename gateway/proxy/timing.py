"""Time the waits on the upstream, so the gateway can report its own overhead.

`gateway_overhead_seconds` is a call's whole duration minus the time spent awaiting the
upstream (the request until its headers or body are in, then every read of a stream) and
minus the time a streaming client took to take each frame (timed where the handler
yields it). Measured here, around the awaits themselves, so retries and fallbacks inside the upstream layer count as upstream
time too, and no transport or translator needs to know about it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from time import perf_counter
from typing import TypeVar

from gateway.proxy.exchange import Exchange

T = TypeVar("T")


async def upstream(ex: Exchange, call: Awaitable[T]) -> T:
    """Await one upstream call (`upstreams.post(...)`, `open_stream(...)`), timing it."""
    started = perf_counter()
    try:
        return await call
    finally:
        ex.upstream_s += perf_counter() - started


async def upstream_chunks(ex: Exchange, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upstream's body as it arrives, with every wait for the next chunk timed."""
    chunks = source.__aiter__()
    try:
        while True:
            started = perf_counter()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            finally:
                ex.upstream_s += perf_counter() - started
            yield chunk
    finally:
        # Closed early (client gone, error downstream): release the upstream connection now,
        # not whenever the inner generator is collected.
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()

