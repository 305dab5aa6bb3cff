"""One straight path per request: read, resolve, apply policy, call, answer, account."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway import metrics
from gateway.api.common import check_auth, error_response, read_json_body, request_id
from gateway.errors import BadRequest, GatewayError, NotFound
from gateway.policy import apply_policy
from gateway.proxy import bridge, gemini_embeddings, passthrough
from gateway.proxy.exchange import Exchange
from gateway.proxy.state import GatewayState
from gateway.registry.snapshot import Model, Registry

log = logging.getLogger("gateway")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def resolve(registry: Registry, body: dict[str, Any], client_api: str) -> Model:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise BadRequest("The request needs a 'model': a registry key or alias.", param="model",
                         code="missing_required_parameter")
    model = registry.find(name)
    if model is None:
        near = registry.closest(name)
        hint = f" Closest: {', '.join(near)}." if near else ""
        raise NotFound(
            f"The model '{name}' does not exist in this gateway's registry.{hint}",
            param="model", code="model_not_found",
        )
    if client_api == "embeddings" and not model.is_embedding:
        raise BadRequest(
            f"The model '{model.key}' is a chat model; /v1/embeddings needs an embedding model.",
            param="model", code="model_not_supported",
        )
    if client_api != "embeddings" and model.is_embedding:
        raise BadRequest(
            f"The model '{model.key}' is an embedding model; use /v1/embeddings with it.",
            param="model", code="model_not_supported",
        )
    return model


def check_content(client_api: str, body: dict[str, Any]) -> None:
    """The request's content must be there and of the right type; the rest is the upstream's."""
    if client_api == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array of messages.", param="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise BadRequest(f"messages[{i}] must be an object with a 'role'.", param=f"messages[{i}]")
    elif client_api == "responses":
        value = body.get("input")
        if not isinstance(value, str | list) or (isinstance(value, list) and not all(isinstance(i, dict) for i in value)):
            raise BadRequest("'input' must be a string or an array of input items.", param="input")
    else:
        value = body.get("input")
        ok = isinstance(value, str) or (
            isinstance(value, list) and value and all(isinstance(i, str | int | list) for i in value)
        )
        if not ok:
            raise BadRequest("'input' must be a string, an array of strings, or token arrays.", param="input")
    if "stream" in body and not isinstance(body["stream"], bool | None):
        raise BadRequest("'stream' must be a boolean.", param="stream")


async def handle(request: Request, client_api: str, route: str) -> Response:
    state: GatewayState = request.app.state.gateway
    rid = request_id(request)
    try:
        check_auth(request, state.settings)
        body = await read_json_body(request, state.settings)
        model = resolve(state.registry, body, client_api)
        check_content(client_api, body)
        strict = request.headers.get("x-gateway-strict", "").lower() == "true"
        result = apply_policy(client_api, body, model, strict)
    except GatewayError as error:
        metrics.requests_total.labels(route, "", "", str(error.status)).inc()
        return error_response(error, {"x-request-id": rid})

    ex = Exchange(route, client_api, model, result, rid)
    metrics.in_flight_requests.inc()
    streaming = False
    try:
        if result.client_stream:
            frames = await _open_stream(ex, state)
            streaming = True
            return StreamingResponse(
                _finishing(ex, frames), media_type="text/event-stream", headers={**SSE_HEADERS, **ex.headers()}
            )
        payload = await _complete(ex, state)
        headers = ex.headers()
        if ex.price() is not None:
            headers["x-gateway-cost-usd"] = f"{ex.cost:.10f}".rstrip("0").rstrip(".") or "0"
        ex.finish(200)
        return Response(payload, media_type="application/json", headers=headers)
    except GatewayError as error:
        ex.finish(error.status, error)
        return error_response(error, ex.headers())
    finally:
        if not streaming:
            metrics.in_flight_requests.dec()


async def _complete(ex: Exchange, state: GatewayState) -> bytes:
    if passthrough.applies(ex):
        return await passthrough.complete(ex, state.upstreams)
    if ex.client_api == "embeddings":
        return await gemini_embeddings.complete(ex, state.upstreams)
    return await bridge.complete(ex, state.upstreams)


async def _open_stream(ex: Exchange, state: GatewayState) -> AsyncIterator[bytes]:
    """Start the upstream call; errors before the first byte are still a plain error answer."""
    if passthrough.applies(ex):
        return await passthrough.stream(ex, state.upstreams)
    return await bridge.stream(ex, state.upstreams)


async def _finishing(ex: Exchange, frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    status, error = 200, None
    try:
        async for frame in frames:
            yield frame
    except GatewayError as exc:
        status, error = exc.status, exc
        log.warning("stream %s for %s ended by an error: %s", ex.request_id, ex.model.key, exc.message)
        yield bridge.error_frame(ex, exc)
    finally:
        ex.finish(status, error)
        metrics.in_flight_requests.dec()
