"""The HTTP surface: thin routes over the proxy path, the model list, health and metrics.

Request bodies are read raw and parsed once by the proxy path; FastAPI never validates
them (that would parse twice and answer 422). The OpenAPI schema still documents them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from gateway.api.calls import PROXY_ROUTES, serve_call
from gateway.api.common import error_response, json_response, request_id
from gateway.api.estimates import (
    ESTIMATE_CHAT,
    ESTIMATE_EMBEDDINGS,
    ESTIMATE_RESPONSES,
    serve_estimate,
)
from gateway.api.openapi import BODIES
from gateway.auth.edge import authenticate, token_from
from gateway.drain import DRAIN
from gateway.errors import GatewayError, NotFound
from gateway.exposure import metrics_refusal
from gateway.keys import access
from gateway.metrics import render_metrics
from gateway.registry.snapshot import describe
from gateway.state import GatewayState
from gateway.types import ClientAPI

router = APIRouter()


def _proxy_route(path: str, client_api: ClientAPI, route: str) -> None:
    async def endpoint(request: Request) -> Response:
        return await serve_call(
            request.app.state.gateway, request.scope, request.receive, client_api, route
        )

    # The same table GatewayApp dispatches on; FastAPI's copy documents them (OpenAPI) and
    # serves them when the app has middleware.
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        name=path.removeprefix("/v1/").replace("/", "_"),
        tags=["openai"],
        openapi_extra=BODIES[client_api],
    )


for _path, (_client_api, _route) in PROXY_ROUTES.items():
    _proxy_route(_path, _client_api, _route)


@router.post("/v1/estimate/chat/completions", openapi_extra=ESTIMATE_CHAT, tags=["estimate"])
async def estimate_chat(request: Request) -> Response:
    return await serve_estimate(request, "chat")


@router.post("/v1/estimate/responses", openapi_extra=ESTIMATE_RESPONSES, tags=["estimate"])
async def estimate_responses(request: Request) -> Response:
    return await serve_estimate(request, "responses")


@router.post("/v1/estimate/embeddings", openapi_extra=ESTIMATE_EMBEDDINGS, tags=["estimate"])
async def estimate_embeddings(request: Request) -> Response:
    return await serve_estimate(request, "embeddings")


@router.get("/v1/models", tags=["openai"])
async def list_models(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    try:
        principal = authenticate(request.headers, state.settings, state.resolver)
    except GatewayError as error:
        return error_response(error, {"x-request-id": request_id(request)})
    registry = state.registry
    return json_response(
        {
            "object": "list",
            "data": [describe(m) for m in registry.models.values() if access.allowed(principal, m)],
        }
    )


@router.get("/v1/models/{model_id:path}", tags=["openai"])
async def get_model(request: Request, model_id: str) -> Response:
    state: GatewayState = request.app.state.gateway
    try:
        principal = authenticate(request.headers, state.settings, state.resolver)
        model = state.registry.find(model_id)
        if model is None:
            near = state.registry.closest(model_id)
            hint = f" Closest: {', '.join(near)}." if near else ""
            raise NotFound(
                f"The model '{model_id}' does not exist in this gateway's registry.{hint}",
                param="model",
                code="model_not_found",
            )
        access.check_model(principal, model, model_id)
    except GatewayError as error:
        return error_response(error, {"x-request-id": request_id(request)})
    return json_response(describe(model))


@router.get("/healthz", tags=["ops"])
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", tags=["ops"])
async def readyz(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    if not state.ready:
        return json_response({"status": "starting"}, status=503)
    if DRAIN.draining:  # SIGTERM came: load balancers stop sending before the port closes
        return json_response({"status": "draining"}, status=503)
    return json_response({"status": "ready", "models": len(state.registry)})


@router.get("/metrics", tags=["ops"])
async def metrics_endpoint(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    refusal = metrics_refusal(token_from(request.headers), state.settings)  # GATEWAY_METRICS_AUTH
    if refusal is not None:
        return error_response(refusal, {"x-request-id": request_id(request)})
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
