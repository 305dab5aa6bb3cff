"""Same API on both sides (passthrough): the client's body with only the policy's edits
goes upstream, and the answer's bytes come back as they came. Streams are relayed event
by event by the wire (gateway.wires), which reads only what accounting needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.proxy import phases
from gateway.proxy.clients import CLIENTS
from gateway.proxy.exchange import Leg
from gateway.translate.sse import aiter_events
from gateway.upstream.client import Upstreams, iter_bytes


def applies(leg: Leg) -> bool:
    return leg.model.wire.relays == leg.client_api


async def _whole(leg: Leg, upstreams: Upstreams) -> tuple[dict[str, Any], bytes]:
    target, body = phases.encode(leg, leg.result.params)
    response = await phases.post(leg, upstreams, target, body)
    data = phases.parse_object(response.content)
    with phases.decoding(leg):
        leg.ex.usage = leg.model.wire.usage(data)
        leg.ex.service_tier = data.get("service_tier")  # the tier the call was billed at
    return data, response.content


async def complete(leg: Leg, upstreams: Upstreams) -> bytes:
    return (await _whole(leg, upstreams))[1]


async def stream(leg: Leg, upstreams: Upstreams) -> AsyncIterator[bytes]:
    if not leg.result.upstream_stream:
        # Called now, not when the client reads: a failure is still a plain error answer.
        data, _ = await _whole(leg, upstreams)
        with phases.decoding(leg):
            frames = list(CLIENTS[leg.client_api].emulated(leg, data))
        return _emulated(leg, frames)
    target, body = phases.encode(leg, leg.result.params)
    response = await phases.open_stream(leg, upstreams, target, body)
    source = phases.chunks(leg, iter_bytes(response, target))
    return leg.model.wire.relay(leg, aiter_events(source), target.secrets)


async def _emulated(leg: Leg, frames: list[bytes]) -> AsyncIterator[bytes]:
    """The policy disabled upstream streaming: called unstreamed, answered as a stream."""
    leg.ex.first_token()
    for frame in frames:
        yield frame
