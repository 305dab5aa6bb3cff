"""One straight path per request: read, resolve, apply policy, call, answer, account."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from time import perf_counter
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gateway import metrics
from gateway.api.common import check_auth, error_response, parse_body, read_body, request_id
from gateway.errors import BadRequest, GatewayError, NotFound, UpstreamError
from gateway.policy import PolicyResult, apply_policy
from gateway.proxy import bridge, gemini_embeddings, limits, passthrough, validate
from gateway.proxy.disconnect import AccountedStream, ClientGone, until_disconnect
from gateway.proxy.exchange import Exchange
from gateway.proxy.state import GatewayState
from gateway.registry.snapshot import Model, Registry
from gateway.upstream.client import reset_sent, sent_upstream
from gateway.upstream.retry import context_too_long, fallback_worthy

log = logging.getLogger("gateway")
T = TypeVar("T")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
CLIENT_CLOSED = 499  # nginx's "client closed request": the status a call the client left is counted under


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


async def handle(request: Request, client_api: str, route: str) -> Response:
    state: GatewayState = request.app.state.gateway
    registry = state.registry  # this request's snapshot, whatever a reload does meanwhile
    rid = request_id(request)
    try:
        check_auth(request, state.settings)
        raw = await read_body(request, state.settings)
        # From here on the time is the gateway's (parse, policy) or the upstream's: the body
        # upload above is the client's, so the overhead metric leaves it out.
        started = perf_counter()
        body = parse_body(raw)
        limits.check_depth(body, raw)
        model = resolve(registry, body, client_api)
        validate.check_body(client_api, body)
        strict = request.headers.get("x-gateway-strict", "").lower() == "true"
        result = apply_policy(client_api, body, model, strict)
    except GatewayError as bad:
        metrics.requests_total.labels(route, "", "", str(bad.status)).inc()
        return error_response(bad, {"x-request-id": rid})

    chain = [model, *(registry.models[key] for key in model.fallbacks)]
    context = limits.ContextCheck(client_api, len(raw))
    metrics.in_flight_requests.inc()
    streaming = False
    ex = Exchange(route, client_api, model, result, rid, started=started)
    failure: GatewayError | None = None
    try:
        for i, candidate in enumerate(chain):
            if i:
                # The fallback's own policy, applied to the client's original body.
                try:
                    result = apply_policy(client_api, parse_body(raw), candidate, strict)
                except GatewayError as exc:
                    log.warning("fallback %s cannot take request %s: %s", candidate.key, rid, exc.message)
                    continue
                ex = _next_exchange(ex, candidate, result)
            try:
                context.check(result.params, candidate)
                if result.client_stream:
                    frames = await until_disconnect(request, _guarded(ex, _open_stream(ex, state)))
                    streaming = True
                    return _stream_response(ex, frames)
                payload = await until_disconnect(request, _guarded(ex, _complete(ex, state)))
                return _answer(ex, payload)
            except GatewayError as exc:
                failure = exc
                if i + 1 < len(chain) and fallback_worthy(exc):
                    _hand_over(ex, exc, chain[i + 1])
                    continue
                break
        assert failure is not None  # the loop returns on success
        ex.finish(failure.status, failure)
        return error_response(failure, ex.headers())
    except ClientGone:
        ex.finish(CLIENT_CLOSED)
        return Response(status_code=CLIENT_CLOSED)  # nobody reads it; uvicorn drops it
    finally:
        if not streaming:
            metrics.in_flight_requests.dec()


# What a translator raises when a value has a shape it does not expect.
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)


async def _guarded(ex: Exchange, work: Awaitable[T]) -> T:
    """A translator that trips over a value's shape is a clear error, never a 500: the
    client's (400) before the request went upstream, the upstream's (502) after."""
    reset_sent()
    try:
        return await work
    except _SHAPE_ERRORS as exc:
        log.warning("request %s for %s: cannot translate (%s: %s)", ex.request_id, ex.model.key,
                    type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        if sent_upstream():
            raise UpstreamError("The upstream answered with a body the gateway cannot read.",
                                code="upstream_invalid_response", reason="invalid_response") from None
        raise BadRequest(f"The request has a value this model's API cannot take ({type(exc).__name__}: "
                         f"{str(exc)[:200]}).", code="invalid_request_body") from None


def _answer(ex: Exchange, payload: bytes) -> Response:
    headers = ex.headers()
    if ex.price() is not None:
        headers["x-gateway-cost-usd"] = f"{ex.cost:.10f}".rstrip("0").rstrip(".") or "0"
    ex.finish(200)
    return Response(payload, media_type="application/json", headers=headers)


def _hand_over(ex: Exchange, error: GatewayError, fallback: Model) -> None:
    """The model failed for good: count it, and say why the next one gets the request."""
    if error.upstream and not error.counted:
        metrics.upstream_errors_total.labels(ex.model.key, ex.model.provider_name, error.reason).inc()
        error.counted = True
    reason = "context_length" if context_too_long(error) else error.reason
    metrics.fallbacks_total.labels(ex.model.key, fallback.key, reason).inc()
    log.warning("request %s: %s failed (%s: %s); falling back to %s",
                ex.request_id, ex.model.key, error.status, error.message, fallback.key)


def _next_exchange(previous: Exchange, model: Model, result: PolicyResult) -> Exchange:
    ex = Exchange(previous.route, previous.client_api, model, result, previous.request_id,
                  started=previous.started)
    ex.upstream_s = previous.upstream_s  # time spent on the models that failed is upstream time
    return ex


def _stream_response(ex: Exchange, frames: AsyncIterator[bytes]) -> Response:
    def on_end() -> None:
        # The stream was over before it was iterated to its end: the client left.
        _end_stream(ex, CLIENT_CLOSED, None)

    return AccountedStream(_finishing(ex, frames), {**SSE_HEADERS, **ex.headers()}, on_end)


def _end_stream(ex: Exchange, status: int, error: GatewayError | None) -> None:
    if not ex.finished:
        ex.finish(status, error)
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
    status, error = CLIENT_CLOSED, None  # unless the stream ends, the client left
    try:
        async for frame in frames:
            sent = perf_counter()
            yield frame
            ex.client_s += perf_counter() - sent  # the client's read, not gateway overhead
        status = 200
    except (GatewayError, *_SHAPE_ERRORS) as exc:
        if not isinstance(exc, GatewayError):  # a stream event the translator cannot read
            exc = UpstreamError(f"The upstream sent a stream event the gateway cannot read ({type(exc).__name__}).",
                                code="upstream_invalid_response", reason="invalid_response")
        status, error = exc.status, exc
        log.warning("stream %s for %s ended by an error: %s", ex.request_id, ex.model.key, exc.message)
        yield bridge.error_frame(ex, exc)
    finally:
        _end_stream(ex, status, error)
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()  # release the upstream connection now, not when collected
