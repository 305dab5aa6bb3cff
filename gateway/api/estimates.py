"""`POST /v1/estimate/{chat/completions,responses,embeddings}`: what a call would cost.

The body is exactly the one of the route named; the answer is the estimate of the call
the gateway would make for it (the model the capability check settles on, after its
policy), computed by gateway.estimate. Nothing is sent upstream, nothing is spent and
no call is recorded.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway import capabilities
from gateway.api.common import error_response, json_response, parse_body, read_body, request_id
from gateway.api.openapi import CHAT_BODY, EMBEDDINGS_BODY, RESPONSES_BODY
from gateway.auth.edge import authenticate
from gateway.errors import GatewayError
from gateway.estimate import Estimate, estimate
from gateway.policy import PolicyResult, apply_policy
from gateway.proxy import limits, validate
from gateway.proxy.exchange import CLIENT_CLOSED
from gateway.proxy.handler import resolve
from gateway.registry.snapshot import Model
from gateway.state import GatewayState
from gateway.types import ClientAPI

# route path -> the client API whose body it takes
ESTIMATE_ROUTES: dict[str, ClientAPI] = {
    "/v1/estimate/chat/completions": "chat",
    "/v1/estimate/responses": "responses",
    "/v1/estimate/embeddings": "embeddings",
}


async def serve_estimate(request: Request, client_api: ClientAPI) -> Response:
    state: GatewayState = request.app.state.gateway
    rid = request_id(request)
    try:
        authenticate(request.headers, state.settings, state.resolver)
        raw = await read_body(request, state.settings)
        body = parse_body(raw)
        limits.check_depth(body, raw)
        registry = state.registry
        model = resolve(registry, body, client_api)
        validate.check_body(client_api, body)
        strict = request.headers.get("x-gateway-strict", "").lower() == "true"
        chain = [model, *(registry.models[key] for key in model.fallbacks)]
        chosen, result, notes = _choose(client_api, body, raw, chain, strict)
        answer = estimate(client_api, chosen, result)
    except GatewayError as error:
        return error_response(error, {"x-request-id": rid})
    except ClientDisconnect:  # gone in the middle of its body: nobody to answer
        return Response(status_code=CLIENT_CLOSED)
    return json_response(as_json(answer, result, notes), headers={"x-request-id": rid})


def _choose(
    client_api: ClientAPI, body: dict[str, Any], raw: bytes, chain: list[Model], strict: bool
) -> tuple[Model, PolicyResult, list[str]]:
    """The model the request path would call first: the first of the chain whose policy
    takes the request and that has the capabilities it needs (gateway.proxy.handler)."""
    notes: list[str] = []
    first_error: GatewayError | None = None
    for i, model in enumerate(chain):
        try:
            result = apply_policy(client_api, body if i == 0 else orjson.loads(raw), model, strict)
        except GatewayError as error:
            if i == 0:
                raise
            notes.append(f"fallback {model.key} cannot take the request: {error.message}")
            continue
        name = capabilities.lacking(client_api, model, result)
        if name is None:
            return model, result, notes
        first_error = first_error or capabilities.capability_error(model, name)
        notes.append(f"{model.key} lacks the '{name}' capability")
    assert first_error is not None
    raise first_error


def _number(value: Any) -> Any:
    # A Decimal cost as a JSON number: the shortest float that reads back as it (costs have
    # far fewer than 15 significant digits, so the text is the exact decimal).
    return None if value is None else float(value)


def as_json(e: Estimate, result: PolicyResult, notes: list[str]) -> dict[str, Any]:
    return {
        "model": e.model,
        "input_tokens": e.input_tokens,
        "max_output_tokens": e.max_output_tokens,
        "cost_usd": {"min": _number(e.min_cost), "max": _number(e.max_cost)},
        "policy": {"dropped": list(result.dropped), "notes": [*notes, *result.notes]},
    }


_ESTIMATE_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input_tokens", "max_output_tokens", "cost_usd", "policy"],
    "properties": {
        "model": {"type": "string", "description": "The registry key the call would go to."},
        "input_tokens": {
            "type": "integer",
            "description": "Offline estimate, an upper bound for text.",
        },
        "max_output_tokens": {
            "type": ["integer", "null"],
            "description": "After the policy; null when nothing bounds the output.",
        },
        "cost_usd": {
            "type": "object",
            "required": ["min", "max"],
            "properties": {
                "min": {
                    "type": ["number", "null"],
                    "description": "The input alone, uncached, no output.",
                },
                "max": {
                    "type": ["number", "null"],
                    "description": "The input and the largest output.",
                },
            },
        },
        "policy": {
            "type": "object",
            "required": ["dropped", "notes"],
            "properties": {
                "dropped": {"type": "array", "items": {"type": "string"}},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}


def _openapi(body: dict[str, Any], what: str) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["summary"] = f"Estimate a {what} call: tokens and cost, with no upstream call and no spend"
    out["responses"]["200"] = {
        "description": "The estimate",
        "content": {"application/json": {"schema": _ESTIMATE_ANSWER}},
    }
    return out


ESTIMATE_CHAT = _openapi(CHAT_BODY, "/v1/chat/completions")
ESTIMATE_RESPONSES = _openapi(RESPONSES_BODY, "/v1/responses")
ESTIMATE_EMBEDDINGS = _openapi(EMBEDDINGS_BODY, "/v1/embeddings")
