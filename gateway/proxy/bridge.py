"""Different APIs on the two sides: go through the internal (chat) shape both ways.

client request -> internal request -> upstream request; upstream answer -> internal
completion (or chunks, one event at a time) -> client answer. Each step is a pure
converter from gateway.translate; this module only wires them to the upstream call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from gateway.accounting import usage_from_chat
from gateway.errors import GatewayError, UpstreamError, from_upstream
from gateway.proxy import phases, render
from gateway.proxy.exchange import Exchange, Leg
from gateway.proxy.passthrough import parse_object
from gateway.translate.emulate import completion_to_chunks
from gateway.translate.gemini import chat_to_generate_content, generate_content_to_chat
from gateway.translate.gemini_compat import (
    CompatStreamFixer,
    compat_model_id,
    compat_request,
    compat_response,
)
from gateway.translate.gemini_stream import GeminiToChatStream
from gateway.translate.responses import (
    chat_request_to_responses,
    chat_response_to_responses,
    responses_request_to_chat,
    responses_response_to_chat,
)
from gateway.translate.responses_stream import ChatToResponsesStream, ResponsesToChatStream
from gateway.translate.sse import DONE, aiter_events, data_frame, event_frame
from gateway.upstream.client import Target, Upstreams, iter_bytes, target_for

# Unified parameters the policy set on a Responses body that the converter must carry.
_CARRIED = ("max_output_tokens", "reasoning_effort", "thinking_level", "thinking_budget", "include_thoughts")


def _pivot_request(leg: Leg) -> dict[str, Any]:
    params = leg.result.params
    if leg.client_api != "responses":
        return params
    pivot = responses_request_to_chat(params)
    for name in _CARRIED:
        if name in params:
            pivot[name] = params[name]
        else:
            pivot.pop(name, None)
    return pivot


def _native_id(leg: Leg) -> str:
    native = leg.model.native_id
    return native.removeprefix("models/")


def _encode(leg: Leg) -> tuple[Target, bytes]:
    with phases.encoding(leg):
        return _upstream_request(leg, _pivot_request(leg))


def _upstream_request(leg: Leg, pivot: dict[str, Any]) -> tuple[Target, bytes]:
    model, result = leg.model, leg.result
    endpoint = model.endpoint
    if endpoint == "chat_completions" and model.provider.kind == "openai":
        body = render.openai_chat(pivot, result, model.native_id)
        return target_for(model, "/chat/completions"), orjson.dumps(body)
    if endpoint == "chat_completions":
        body = compat_request(pivot)
        body["model"] = compat_model_id(model.native_id)
        render.set_stream(body, result, usage_option=True)
        return target_for(model, "/openai/chat/completions"), orjson.dumps(body)
    if endpoint == "responses":
        body = chat_request_to_responses(pivot)
        body["model"] = model.native_id
        render.set_stream(body, result, usage_option=False)
        return target_for(model, "/responses"), orjson.dumps(body)
    body = chat_to_generate_content(pivot)
    action = ":streamGenerateContent?alt=sse" if result.upstream_stream else ":generateContent"
    return target_for(model, f"/models/{_native_id(leg)}{action}", native_auth=True), orjson.dumps(body)


def _completion_from(leg: Leg, data: dict[str, Any]) -> dict[str, Any]:
    model, thoughts = leg.model, leg.result.include_thoughts
    if model.endpoint == "responses":
        return responses_response_to_chat(data)
    if model.endpoint == "gemini_sdk":
        return generate_content_to_chat(data, _native_id(leg), thoughts)
    if model.provider.kind == "gemini":
        return compat_response(data, thoughts)
    return data


async def _pivot_completion(leg: Leg, upstreams: Upstreams) -> dict[str, Any]:
    target, body = _encode(leg)
    response = await phases.post(leg, upstreams, target, body)
    data = parse_object(response.content)
    with phases.decoding(leg):
        completion = _completion_from(leg, data)
        leg.ex.usage = usage_from_chat(completion.get("usage"))
        leg.ex.service_tier = completion.get("service_tier")
    return completion


def _client_payload(leg: Leg, completion: dict[str, Any]) -> dict[str, Any]:
    if leg.client_api == "responses":
        return chat_response_to_responses(completion, leg.result.params)
    return completion


async def complete(leg: Leg, upstreams: Upstreams) -> bytes:
    completion = await _pivot_completion(leg, upstreams)
    with phases.decoding(leg):
        return orjson.dumps(_client_payload(leg, completion))


async def stream(leg: Leg, upstreams: Upstreams) -> AsyncIterator[bytes]:
    if not leg.result.upstream_stream:
        # Called now, not when the client reads: a failure is still a plain error answer.
        return _client_frames(leg, _emulated_chunks(await _pivot_completion(leg, upstreams)))
    target, body = _encode(leg)
    response = await phases.open_stream(leg, upstreams, target, body)
    source = phases.chunks(leg, iter_bytes(response, target))
    return _client_frames(leg, _pivot_chunks(leg, source))


async def _emulated_chunks(completion: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    for chunk in completion_to_chunks(completion, True):
        yield chunk


def _feeder(leg: Leg) -> tuple[Any, bool]:
    """The state machine that turns one upstream event into internal chunks."""
    model, thoughts = leg.model, leg.result.include_thoughts
    if model.endpoint == "responses":
        return ResponsesToChatStream(model.native_id, include_usage=True), True
    if model.endpoint == "gemini_sdk":
        return GeminiToChatStream(_native_id(leg), thoughts, include_usage=True), True
    if model.provider.kind == "gemini":
        return CompatStreamFixer(thoughts), False
    return None, False


async def _pivot_chunks(leg: Leg, source: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    feeder, has_finish = _feeder(leg)
    ended = False  # a [DONE] or a finish reason: anything less is a truncated stream
    async for event in aiter_events(source):
        if event.is_done:
            ended = True
            continue
        data = event.json()
        if not isinstance(data, dict):
            continue
        if data.get("error") and feeder is None:
            raise _stream_error(data)
        chunks: Iterable[dict[str, Any]] = feeder.feed(data) if feeder is not None else (data,)
        for chunk in chunks:
            ended = ended or _has_finish(chunk)
            yield chunk
    if has_finish:
        for chunk in feeder.finish():
            ended = ended or _has_finish(chunk)
            yield chunk
    if not ended:
        raise UpstreamError("The upstream closed the stream before it was complete.",
                            code="upstream_stream_truncated", reason="stream_truncated")


def _has_finish(chunk: dict[str, Any]) -> bool:
    return any(choice.get("finish_reason") for choice in chunk.get("choices") or ())


def _stream_error(data: dict[str, Any]) -> GatewayError:
    return from_upstream(500, orjson.dumps(data))


async def _client_frames(leg: Leg, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    ex, include_usage = leg.ex, leg.result.include_usage
    events = ChatToResponsesStream(leg.result.params, leg.model.native_id) if leg.client_api == "responses" else None
    async for chunk in chunks:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            ex.usage = usage_from_chat(usage)
            ex.service_tier = chunk.get("service_tier")
        if ex.first_token_at is None and chunk.get("choices"):
            ex.first_token()
        if events is not None:
            for payload in events.feed(chunk):
                ex.sequence = payload.get("sequence_number", ex.sequence) + 1
                yield event_frame(payload)
            continue
        if isinstance(usage, dict) and not include_usage:
            if not chunk.get("choices"):
                continue
            chunk = {**chunk, "usage": None}
        yield data_frame(chunk)
    if events is not None:
        for payload in events.finish():
            ex.sequence = payload.get("sequence_number", ex.sequence) + 1
            yield event_frame(payload)
    else:
        yield DONE


def error_frame(ex: Exchange, error: GatewayError) -> bytes:
    """The frame that ends a stream on failure; the OpenAI SDK raises on its `error` key."""
    body = error.body()
    if ex.client_api == "responses":
        err = body["error"]
        return event_frame({
            "type": "error",
            "sequence_number": ex.sequence,
            "code": err["code"],
            "message": err["message"],
            "param": err["param"],
            "error": err,
        })
    return data_frame(body)
