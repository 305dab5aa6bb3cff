"""One straight path per request: resolve, apply policy, call, answer.

The api edge has authenticated the caller and parsed the body before this runs; the
call is recorded once, by the Exchange, however it ends (gateway.proxy.exchange).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import orjson
from starlette.responses import Response

from gateway import capabilities
from gateway.accounting import cost_text
from gateway.admission import stage as admission
from gateway.answers import JSONBytes, error_response
from gateway.drain import DRAIN
from gateway.errors import BadRequest, GatewayError, NotFound, ShuttingDown, UpstreamError
from gateway.estimate import cost_refusal, estimate
from gateway.keys import access
from gateway.policy import PolicyResult, apply_policy
from gateway.proxy import bridge, limits, relay, validate
from gateway.proxy.clients import CLIENTS
from gateway.proxy.disconnect import AccountedStream, ClientGone, until_disconnect
from gateway.proxy.exchange import CLIENT_CLOSED, Exchange, Leg
from gateway.proxy.phases import SHAPE_ERRORS
from gateway.proxy.request import ClientRequest
from gateway.registry.snapshot import Model, Registry
from gateway.state import GatewayState
from gateway.types import ClientAPI
from gateway.upstream.retry import context_too_long, fallback_worthy

log = logging.getLogger("gateway")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def resolve(registry: Registry, body: dict[str, Any], client_api: ClientAPI) -> Model:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise BadRequest(
            "The request needs a 'model': a registry key or alias.",
            param="model",
            code="missing_required_parameter",
        )
    model = registry.find(name)
    if model is None:
        near = registry.closest(name)
        hint = f" Closest: {', '.join(near)}." if near else ""
        raise NotFound(
            f"The model '{name}' does not exist in this gateway's registry.{hint}",
            param="model",
            code="model_not_found",
        )
    wants_embedding = CLIENTS[client_api].embedding
    if wants_embedding and not model.is_embedding:
        raise BadRequest(
            f"The model '{model.key}' is a chat model; /v1/embeddings needs an embedding model.",
            param="model",
            code="model_not_supported",
        )
    if not wants_embedding and model.is_embedding:
        raise BadRequest(
            f"The model '{model.key}' is an embedding model; use /v1/embeddings with it.",
            param="model",
            code="model_not_supported",
        )
    return model


async def handle(state: GatewayState, req: ClientRequest, ex: Exchange) -> Response:
    """Answer one parsed, authenticated request; `ex` records it when it ends."""
    try:
        return await _handle(state, req, ex)
    except ClientGone:
        ex.finish(CLIENT_CLOSED)
        return Response(status_code=CLIENT_CLOSED)  # nobody reads it; uvicorn drops it
    except asyncio.CancelledError:
        ex.finish(CLIENT_CLOSED)
        raise
    except Exception:
        ex.finish(500, GatewayError("internal error", code="internal_error"))
        raise  # the app answers with the envelope and logs it


async def _handle(state: GatewayState, req: ClientRequest, ex: Exchange) -> Response:
    registry = state.registry  # this request's snapshot, whatever a reload does meanwhile
    client_api, body, raw = req.client_api, req.body, req.raw
    try:
        limits.check_depth(body, raw)
        model = resolve(registry, body, client_api)
        ex.requested = model  # a refusal from here on is recorded against the model asked for
        access.check_model(
            req.principal, model, body.get("model")
        )  # a virtual key's allow-list: 403
        validate.check_body(client_api, body)
        result = apply_policy(client_api, body, model, req.strict)
    except GatewayError as bad:
        ex.finish(bad.status, bad)
        return error_response(bad, {"x-request-id": ex.request_id})

    # A fallback the key may not use is skipped: a fallback never widens a key's models.
    chain = [
        model,
        *(
            registry.models[key]
            for key in model.fallbacks
            if access.allowed(req.principal, registry.models[key])
        ),
    ]
    context = limits.ContextCheck(client_api, len(raw))
    ex.body_size = len(raw)
    leg = ex.begin(model, result)
    grant = None
    if state.admission is not None and (quota := admission.quota_of(req.principal)) is not None:
        # A key's rate limits and budget; settled by the Exchange's sinks.
        try:
            grant = await admission.admit(state.admission, quota, req, ex, chain, result)
        except GatewayError as refused:
            ex.finish(refused.status, refused)
            return error_response(refused, ex.headers())
    failure: GatewayError | None = None
    for i, candidate in enumerate(chain):
        if i:
            # The fallback's own policy, applied to the client's original body.
            try:
                result = apply_policy(client_api, orjson.loads(raw), candidate, req.strict)
            except GatewayError as exc:
                log.warning(
                    "fallback %s cannot take request %s: %s",
                    candidate.key,
                    ex.request_id,
                    exc.message,
                )
                continue
            if grant is not None:
                grant.cap(result.params)
            leg = ex.begin(candidate, result)
        refusal = _admit(req, candidate, result)
        if refusal is not None:
            # Refused before anything was sent. A missing capability hands the request to the
            # next model; a worst case over the client's cap refuses the call (a fallback over
            # it is skipped). The answer is the first refusal, unless a model already failed
            # upstream; a cost refusal outranks a capability one.
            capability = refusal.code == "model_capability_missing"
            if failure is None or (failure.code == "model_capability_missing" and not capability):
                failure = refusal
            if i + 1 < len(chain) and (capability or i > 0):
                ex.hand_over(refusal, chain[i + 1], "capability" if capability else "cost_limit")
                log.info(
                    "request %s: %s refused (%s); trying %s",
                    ex.request_id,
                    candidate.key,
                    refusal.message,
                    chain[i + 1].key,
                )
                continue
            break
        try:
            if context.needs_count(candidate):
                await context.count(result.params, candidate)  # a big input: off the event loop
            context.check(result.params, candidate)
            if result.client_stream:
                frames = await until_disconnect(req.receive, _open_stream(leg, state), req.hangup)
                return _stream_response(leg, frames)
            payload = await until_disconnect(req.receive, _complete(leg, state), req.hangup)
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


def _admit(req: ClientRequest, model: Model, result: PolicyResult) -> GatewayError | None:
    """What refuses this model before any upstream call: a capability it lacks, or a worst
    case above the client's x-gateway-max-cost-usd."""
    name = capabilities.lacking(req.client_api, model, result)
    if name is not None:
        return capabilities.capability_error(model, name)
    if req.max_cost is not None:
        return cost_refusal(estimate(req.client_api, model, result), req.max_cost)
    return None


def _answer(ex: Exchange, payload: bytes) -> Response:
    headers = ex.headers()
    cost = ex.price()
    if cost is not None:
        headers["x-gateway-cost-usd"] = cost_text(cost)
    ex.finish(200)
    return JSONBytes(payload, headers)


def _hand_over(ex: Exchange, error: GatewayError, fallback: Model) -> None:
    """The model failed for good: note it, and say why the next one gets the request."""
    assert ex.leg is not None
    reason = "context_length" if context_too_long(error) else error.reason
    ex.hand_over(error, fallback, reason)
    log.warning(
        "request %s: %s failed (%s: %s); falling back to %s",
        ex.request_id,
        ex.leg.model.key,
        error.status,
        error.message,
        fallback.key,
    )


def _stream_response(leg: Leg, frames: AsyncIterator[bytes]) -> Response:
    ex = leg.ex
    ex.streamed = True

    def on_end() -> None:
        # The stream was over before it was iterated to its end: the client left.
        ex.finish(CLIENT_CLOSED)

    return AccountedStream(_finishing(leg, frames), {**SSE_HEADERS, **ex.headers()}, on_end)


async def _complete(leg: Leg, state: GatewayState) -> bytes:
    if relay.applies(leg):
        return await relay.complete(leg, state.upstreams)
    return await bridge.complete(leg, state.upstreams)


async def _open_stream(leg: Leg, state: GatewayState) -> AsyncIterator[bytes]:
    """Start the upstream call; errors before the first byte are still a plain error answer."""
    if relay.applies(leg):
        return await relay.stream(leg, state.upstreams)
    return await bridge.stream(leg, state.upstreams)


async def _finishing(leg: Leg, frames: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    ex = leg.ex
    status: int = CLIENT_CLOSED  # unless the stream ends, the client left
    error: GatewayError | None = None
    task = asyncio.current_task()
    if task is not None:
        DRAIN.streams.add(task)  # a shutdown whose grace runs out ends it with an error frame
    try:
        async for frame in frames:
            sent = perf_counter()
            yield frame
            ex.client_s += perf_counter() - sent  # the client's read, not gateway overhead
        status = 200
    except asyncio.CancelledError:
        if not DRAIN.grace_over or task is None:
            raise
        task.uncancel()
        error = ShuttingDown()
        status = error.status
        log.warning(
            "stream %s for %s cut: the shutdown grace period is over", ex.request_id, leg.model.key
        )
        frame = CLIENTS[leg.client_api].error_frame(ex, error)
        ex.finish(status, error)  # recorded before the client hears of it, not after
        yield frame
    except (GatewayError, *SHAPE_ERRORS) as exc:
        if not isinstance(exc, GatewayError):  # a stream event the translator cannot read
            exc = UpstreamError(
                f"The upstream sent a stream event the gateway cannot read ({type(exc).__name__}).",
                code="upstream_invalid_response",
                reason="invalid_response",
            )
        status, error = exc.status, exc
        log.warning(
            "stream %s for %s ended by an error: %s", ex.request_id, leg.model.key, exc.message
        )
        frame = CLIENTS[leg.client_api].error_frame(ex, exc)
        ex.finish(status, error)  # recorded before the client hears of it, not after
        yield frame
    finally:
        if task is not None:
            DRAIN.streams.discard(task)
        ex.finish(status, error)
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()  # release the upstream connection now, not when collected
