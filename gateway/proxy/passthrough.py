"""Same API on both sides: forward the body with only the policy's edits, relay the answer.

The answer's bytes go back as they came. Streams are relayed event by event as they
arrive; only the events that carry usage are parsed (to account for the call), and the
usage chunk the gateway asked for is hidden from a client that did not ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.accounting import usage_from_chat, usage_from_embeddings, usage_from_responses
from gateway.errors import UpstreamError, from_upstream
from gateway.proxy import render, timing
from gateway.proxy.emulation import emulated_chat_frames
from gateway.proxy.exchange import Exchange
from gateway.translate.emulate import response_to_events
from gateway.translate.sse import DONE, aiter_events, data_frame, event_frame
from gateway.upstream.client import Target, Upstreams, iter_bytes, target_for

_USAGE_MARKS = (b'"usage":{', b'"usage": {')
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def applies(ex: Exchange) -> bool:
    kind, endpoint = ex.model.provider.kind, ex.model.endpoint
    if ex.client_api == "chat":
        return kind == "openai" and endpoint == "chat_completions"
    if ex.client_api == "responses":
        return endpoint == "responses"
    return endpoint == "embeddings" and kind == "openai"


def _request(ex: Exchange) -> tuple[Target, bytes]:
    params, native = ex.result.params, ex.model.native_id
    if ex.client_api == "chat":
        body = render.openai_chat(params, ex.result, native)
        path = "/chat/completions"
    elif ex.client_api == "responses":
        body = render.openai_responses(params, ex.result, native)
        path = "/responses"
    else:
        body = render.openai_embeddings(params, native)
        path = "/embeddings"
    return target_for(ex.model, path), orjson.dumps(body)


def parse_json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamError("The upstream answered with a body that is not JSON.",
                            code="upstream_invalid_response", reason="invalid_response") from None


async def complete(ex: Exchange, upstreams: Upstreams) -> bytes:
    target, body = _request(ex)
    response = await timing.upstream(ex, upstreams.post(target, body))
    data = parse_json(response.content)
    if not isinstance(data, dict):
        raise UpstreamError("The upstream answered with an unexpected JSON value.",
                            code="upstream_invalid_response", reason="invalid_response")
    if ex.client_api == "chat":
        ex.usage = usage_from_chat(data.get("usage"))
    elif ex.client_api == "responses":
        ex.usage = usage_from_responses(data.get("usage"))
        if ex.result.client_stream:
            ex.first_token()
            return b"".join(event_frame(e) for e in response_to_events(data))
    else:
        ex.usage = usage_from_embeddings(data.get("usage"))
    return response.content


async def stream(ex: Exchange, upstreams: Upstreams) -> AsyncIterator[bytes]:
    if not ex.result.upstream_stream:
        # Called now, not when the client reads: a failure is still a plain error answer.
        return _emulated(ex, await complete(ex, upstreams))
    target, body = _request(ex)
    response = await timing.upstream(ex, upstreams.open_stream(target, body))
    source = timing.upstream_chunks(ex, iter_bytes(response, target))
    if ex.client_api == "chat":
        return _relay_chat(ex, source, target)
    return _relay_responses(ex, source, target)


async def _emulated(ex: Exchange, content: bytes) -> AsyncIterator[bytes]:
    """The policy disabled upstream streaming: called unstreamed, answered as a stream."""
    ex.first_token()
    if ex.client_api == "responses":
        yield content  # already framed as events by complete()
        return
    for frame in emulated_chat_frames(orjson.loads(content), ex.result.include_usage):
        yield frame


def _truncated() -> UpstreamError:
    return UpstreamError("The upstream closed the stream before it was complete.",
                         code="upstream_stream_truncated", reason="stream_truncated")


async def _relay_chat(ex: Exchange, source: AsyncIterator[bytes], target: Target) -> AsyncIterator[bytes]:
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
                if not ex.result.include_usage:
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


async def _relay_responses(ex: Exchange, source: AsyncIterator[bytes], target: Target) -> AsyncIterator[bytes]:
    ended = False
    async for event in aiter_events(source):
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
        elif ex.first_token_at is None and name.endswith(".delta"):
            ex.first_token()
        yield event.raw
    if not ended:
        raise _truncated()
