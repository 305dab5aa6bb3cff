"""The HTTP surface: thin routes over the proxy path, the model list, health and metrics.

Request bodies are read raw and parsed once by the proxy path; FastAPI never validates
them (that would parse twice and answer 422). The OpenAPI schema still documents them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from gateway.api.calls import serve_call
from gateway.api.common import error_response, json_response, request_id
from gateway.api.openapi import CHAT_BODY, EMBEDDINGS_BODY, RESPONSES_BODY
from gateway.auth.edge import authenticate
from gateway.errors import GatewayError, NotFound
from gateway.metrics import render_metrics
from gateway.registry.snapshot import describe
from gateway.state import GatewayState

router = APIRouter()


@router.post("/v1/chat/completions", openapi_extra=CHAT_BODY, tags=["openai"])
async def chat_completions(request: Request) -> Response:
    return await serve_call(request, "chat", "/v1/chat/completions")


@router.post("/v1/responses", openapi_extra=RESPONSES_BODY, tags=["openai"])
async def responses(request: Request) -> Response:
    return await serve_call(request, "responses", "/v1/responses")


@router.post("/v1/embeddings", openapi_extra=EMBEDDINGS_BODY, tags=["openai"])
async def embeddings(request: Request) -> Response:
    return await serve_call(request, "embeddings", "/v1/embeddings")


@router.get("/v1/models", tags=["openai"])
async def list_models(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    try:
        authenticate(request.headers, state.settings, state.resolver)
    except GatewayError as error:
        return error_response(error, {"x-request-id": request_id(request)})
    registry = state.registry
    return json_response({"object": "list", "data": [describe(m) for m in registry.models.values()]})


@router.get("/v1/models/{model_id:path}", tags=["openai"])
async def get_model(request: Request, model_id: str) -> Response:
    state: GatewayState = request.app.state.gateway
    try:
        authenticate(request.headers, state.settings, state.resolver)
        model = state.registry.find(model_id)
        if model is None:
            near = state.registry.closest(model_id)
            hint = f" Closest: {', '.join(near)}." if near else ""
            raise NotFound(f"The model '{model_id}' does not exist in this gateway's registry.{hint}",
                           param="model", code="model_not_found")
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
    return json_response({"status": "ready", "models": len(state.registry)})


@router.get("/metrics", tags=["ops"])
async def metrics_endpoint() -> Response:
    return Response(render_metrics(), media_type=CONTENT_TYPE_LATEST)
