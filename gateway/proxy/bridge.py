"""Different APIs on the two sides: through the internal shape both ways.

client request -> internal request -> upstream request (the wire); upstream answer ->
internal answer (or chunks, one event at a time) -> client answer (the client side).
Each step is a pure converter; this module only wires them to the upstream call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.accounting import usage_from_chat, usage_from_embeddings
from gateway.proxy import phases
from gateway.proxy.clients import CLIENTS
from gateway.proxy.exchange import Leg
from gateway.translate.emulate import completion_to_chunks
from gateway.translate.sse import aiter_events, truncated
from gateway.upstream.client import Upstreams, iter_bytes
from gateway.wires.base import Chunk


async def _internal_answer(leg: Leg, upstreams: Upstreams) -> dict[str, Any]:
    wire = leg.model.wire
    with phases.encoding(leg):
        pivot = CLIENTS[leg.client_api].pivot(leg)
    target, body = phases.encode(leg, pivot)
    response = await phases.post(leg, upstreams, target, body)
    data = phases.parse_object(response.content)
    ex = leg.ex
    with phases.decoding(leg):
        internal = wire.answer(leg, data)
        ex.usage = wire.usage(data)
        ex.service_tier = internal.get("service_tier")  # the tier the call was billed at
        if wire.estimates_usage:
            ex.usage, ex.estimated = usage_from_embeddings(internal.get("usage")), True
    return internal


async def complete(leg: Leg, upstreams: Upstreams) -> bytes:
    internal = await _internal_answer(leg, upstreams)
    with phases.decoding(leg):
        return orjson.dumps(CLIENTS[leg.client_api].render(leg, internal))


async def stream(leg: Leg, upstreams: Upstreams) -> AsyncIterator[bytes]:
    client = CLIENTS[leg.client_api]
    if not leg.result.upstream_stream:
        # Called now, not when the client reads: a failure is still a plain error answer.
        internal = await _internal_answer(leg, upstreams)
        return client.frames(leg, _tracked(leg, _emulated_chunks(internal)))
    with phases.encoding(leg):
        pivot = client.pivot(leg)
    target, body = phases.encode(leg, pivot)
    response = await phases.open_stream(leg, upstreams, target, body)
    source = phases.chunks(leg, iter_bytes(response, target))
    return client.frames(leg, _tracked(leg, _internal_chunks(leg, source)))


async def _emulated_chunks(completion: dict[str, Any]) -> AsyncIterator[Chunk]:
    for chunk in completion_to_chunks(completion, True):
        yield chunk


async def _internal_chunks(leg: Leg, source: AsyncIterator[bytes]) -> AsyncIterator[Chunk]:
    ex, wire = leg.ex, leg.model.wire
    parser = wire.parser(leg)
    ended = False  # a [DONE] or a finish reason: anything less is a truncated stream
    async for event in aiter_events(source):
        if event.is_done:
            ended = True
            continue
        data = event.json()
        if not isinstance(data, dict):
            continue
        # Into the call now, before the parser can hold it back or raise on a failed
        # response: a client that leaves after this point is billed exactly.
        usage, final = wire.stream_usage(data)
        if usage is not None:
            ex.note_usage(usage, final)
        for chunk in parser.feed(data):
            ended = ended or _has_finish(chunk)
            yield chunk
    for chunk in parser.finish():
        ended = ended or _has_finish(chunk)
        yield chunk
    if not ended:
        raise truncated()


async def _tracked(leg: Leg, chunks: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    """Internal chunks on their way to the client: usage and the first token noted."""
    ex = leg.ex
    async for chunk in chunks:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            ex.usage = usage_from_chat(usage)
            ex.service_tier = chunk.get("service_tier")
        if ex.first_token_at is None and chunk.get("choices"):
            ex.first_token()
        yield chunk


def _has_finish(chunk: Chunk) -> bool:
    return any(choice.get("finish_reason") for choice in chunk.get("choices") or ())
