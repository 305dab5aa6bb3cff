"""Same API on both sides: forward the body with only the policy's edits, relay the answer.

The answer's bytes go back as they came. Streams are relayed event by event as they
arrive; only the events that carry usage are parsed (to account for the call), and the
usage chunk the gateway asked for is hidden from a client that did not ask for it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.accounting import usage_from_chat, usage_from_embeddings, usage_from_responses
from gateway.errors import UpstreamError, from_upstream
from gateway.proxy import phases, render
from gateway.proxy.emulation import emulated_chat_frames
from gateway.proxy.exchange import Leg
from gateway.translate.emulate import response_to_events
from gateway.translate.sse import DONE, aiter_events, data_frame, event_frame
from gateway.upstream.client import Target, Upstreams, iter_bytes, target_for

_USAGE_MARKS = (b'"usage":{', b'"usage": {')
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_SEQUENCE = re.compile(rb'"sequence_number":\s*(\d+)')


def applies(leg: Leg) -> bool:
    kind, endpoint = leg.model.provider.kind, leg.model.endpoint
    if leg.client_api == "chat":
        return kind == "openai" and endpoint == "chat_completions"
    if leg.client_api == "responses":
        return endpoint == "responses"
    return endpoint == "embeddings" and kind == "openai"


def _request(leg: Leg) -> tuple[Target, bytes]:
    params, native = leg.result.params, leg.model.native_id
    with phases.encoding(leg):
        if leg.client_api == "chat":
            body = render.openai_chat(params, leg.result, native)
            path = "/chat/completions"
        elif leg.client_api == "responses":
            body = render.openai_responses(params, leg.result, native)
            path = "/responses"
        else:
            body = render.openai_embeddings(params, native)
            path = "/embeddings"
        return target_for(leg.model, path), orjson.dumps(body)


def parse_json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise phases.invalid_response("a body that is not JSON") from None


def parse_object(content: bytes) -> dict[str, Any]:
    data = parse_json(content)
    if not isinstance(data, dict):
        raise phases.invalid_response("an unexpected JSON value")
    return data


async def complete(leg: Leg, upstreams: Upstreams) -> bytes:
    target, body = _request(leg)
    response = await phases.post(leg, upstreams, target, body)
    data = parse_object(response.content)
    ex = leg.ex
    with phases.decoding(leg):
        if leg.client_api == "chat":
            ex.usage = usage_from_chat(data.get("usage"))
            ex.service_tier = data.get("service_tier")
        elif leg.client_api == "responses":
            ex.usage = usage_from_responses(data.get("usage"))
            ex.service_tier = data.get("service_tier")
            if leg.result.client_stream:
                ex.first_token()
                return b"".join(event_frame(e) for e in response_to_events(data))
        else:
            ex.usage = usage_from_embeddings(data.get("usage"))
    return response.content


async def stream(leg: Leg, upstreams: Upstreams) -> AsyncIterator[bytes]:
    if not leg.result.upstream_stream:
        # Called now, not when the client reads: a failure is still a plain error answer.
        return _emulated(leg, await complete(leg, upstreams))
    target, body = _request(leg)
    response = await phases.open_stream(leg, upstreams, target, body)
    source = phases.chunks(leg, iter_bytes(response, target))
    if leg.client_api == "chat":
        return _relay_chat(leg, source, target)
    return _relay_responses(leg, source, target)


async def _emulated(leg: Leg, content: bytes) -> AsyncIterator[bytes]:
    """The policy disabled upstream streaming: called unstreamed, answered as a stream."""
    leg.ex.first_token()
    if leg.client_api == "responses":
        yield content  # already framed as events by complete()
        return
    for frame in emulated_chat_frames(orjson.loads(content), leg.result.include_usage):
        yield frame


def _truncated() -> UpstreamError:
    return UpstreamError("The upstream closed the stream before it was complete.",
                         code="upstream_stream_truncated", reason="stream_truncated")


async def _relay_chat(leg: Leg, source: AsyncIterator[bytes], target: Target) -> AsyncIterator[bytes]:
    ex, include_usage = leg.ex, leg.result.include_usage
    done = False
    async for event in aiter_events(source):
        if event.is_done:
            done = True
            continue
        raw = event.raw
        if b'"error"' in raw or any(mark in raw for mark in _USAGE_MARKS):
            data = event.json()
            if isinstance(data, dict) and data.get("error"):
                raise from_upstream(500, orjson.dumps(data), None, target.secrets)
            if isinstance(data, dict) and isinstance(data.get("usage"), dict):
                ex.usage = usage_from_chat(data["usage"])
                ex.service_tier = data.get("service_tier")
                if not include_usage:
                    if not data.get("choices"):
                        continue
                    data["usage"] = None
                    raw = data_frame(data)
        if ex.first_token_at is None and b'"delta"' in raw:
            ex.first_token()
        yield raw
    if not done:
        raise _truncated()
    yield DONE


async def _relay_responses(leg: Leg, source: AsyncIterator[bytes], target: Target) -> AsyncIterator[bytes]:
    ex = leg.ex
    ended = False
    async for event in aiter_events(source):
        # An error frame the gateway adds after a fault continues the stream's numbering.
        seq = _SEQUENCE.search(event.raw)
        if seq is not None:
            ex.sequence = int(seq.group(1)) + 1
        name = event.event
        if name is None or name in _TERMINAL or name == "error":
            data = event.json()
            if isinstance(data, dict):
                name = str(data.get("type", name))
                if name == "error" or (data.get("error") and name not in _TERMINAL):
                    raise from_upstream(500, orjson.dumps({"error": data.get("error") or data}),
                                        None, target.secrets)
                response = data.get("response")
                if name in _TERMINAL and isinstance(response, dict):
                    ended = True
                    ex.usage = usage_from_responses(response.get("usage"))
                    ex.service_tier = response.get("service_tier")
        elif ex.first_token_at is None and name.endswith(".delta"):
            ex.first_token()
        yield event.raw
    if not ended:
        raise _truncated()
