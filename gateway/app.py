"""Builds the ASGI app: routes, error envelope, and the lifespan that owns the
registry and the upstream pools."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import metrics, multiprocess
from gateway.api.admin import router as admin_router
from gateway.api.calls import PROXY_ROUTES, serve_call
from gateway.api.common import error_response, header_map, request_id, request_id_of
from gateway.api.routes import router
from gateway.drain import DRAIN
from gateway.errors import GatewayError
from gateway.exposure import edge_refusal, header
from gateway.keys.runtime import Governance
from gateway.registry import Registry, default_registry_path, load_registry
from gateway.registry.watch import RegistryWatcher
from gateway.settings import Settings, from_env
from gateway.state import GatewayState
from gateway.upstream.client import upstream_limits

log = logging.getLogger("gateway")


class GatewayApp(FastAPI):
    """FastAPI, except that a POST to a proxy route goes straight to the proxy handler.

    Those routes read and parse their body themselves, never let FastAPI validate it, and
    turn every error into the OpenAI envelope, so FastAPI's middleware stack, router and
    dependency solving only cost time there: skipping them saves about a sixth of the
    CPU a proxied call takes (measured with bench/run.py). Everything else (models,
    health, metrics, docs, 404/405, any route once middleware is added) is FastAPI's.
    """

    guarded: Settings | None = (
        None  # no master key: Host and content-type are checked (gateway.exposure)
    )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.guarded is not None and scope["type"] == "http":
            headers = scope["headers"]
            refusal = edge_refusal(
                scope["method"],
                scope["path"],
                header(headers, b"host"),
                header(headers, b"content-type"),
                self.guarded,
            )
            if refusal is not None:
                await error_response(refusal)(scope, receive, send)
                return
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not self.root_path
            and not self.user_middleware
        ):  # added middleware must see every request
            route = PROXY_ROUTES.get(scope["path"])
            if route is not None:
                scope["app"] = self
                try:
                    response = await serve_call(self.state.gateway, scope, receive, *route)
                except Exception:
                    log.exception("unexpected error on %s", scope["path"])
                    error = GatewayError(
                        "The gateway failed to handle this request.",
                        status=500,
                        code="internal_error",
                    )
                    rid = request_id_of(header_map(scope["headers"]))
                    response = error_response(error, {"x-request-id": rid})
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or from_env()
    registry_path = settings.registry or str(default_registry_path())
    # Loaded here, not in the lifespan, so a bad registry fails before the port opens.
    registry = load_registry(registry_path, settings.custom_registry)
    state = GatewayState(settings, registry)
    state.upstreams.configure(upstream_limits(settings))
    # Virtual keys: the database is opened (and migrated) here too, before the port opens.
    governance = Governance.open(settings.database_url) if settings.database_url else None
    metrics.registry_models.set(len(registry))

    def swap(new: Registry) -> None:
        state.registry = new  # one reference: a request keeps the snapshot it read

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.master_key:
            log.warning("GATEWAY_MASTER_KEY is not set: any client can call this gateway")
        for provider in registry.providers:
            state.upstreams.client(provider)  # pools exist before the first request
        multiprocess.reap_dead_workers()
        # Every worker process watches the registry itself (hot reload, docs/registry.md).
        watcher = None
        if settings.watch:
            watcher = RegistryWatcher(
                registry_path, settings.custom_registry, lambda: state.registry, swap
            )
            await watcher.start()
        if governance is not None:
            await governance.start(state)  # key cache polling, ledger writes: off the hot path
        # Everything built so far (modules, FastAPI's routes, pydantic schemas, the registry)
        # lives as long as the process: move it out of the collector's reach. Otherwise each
        # full collection walks it all, stalling the event loop ~40 ms about twice per
        # thousand requests under load (bench/run.py).
        gc.collect()
        gc.freeze()
        DRAIN.install(
            settings.drain_s, settings.grace_s
        )  # SIGTERM: not ready, then stop (gateway.drain)
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            if watcher is not None:
                await watcher.stop()
            if governance is not None:
                await governance.stop()  # the last ledger flush
            await state.upstreams.aclose()
            multiprocess.mark_exited()

    app = GatewayApp(
        title="gateway",
        summary="An OpenAI-compatible gateway for OpenAI and Gemini models.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.gateway = state
    app.state.governance = governance
    app.include_router(router)
    app.include_router(admin_router)
    if not settings.master_key:
        app.guarded = settings
    if settings.cors_origins:  # off unless configured; then FastAPI's stack serves every route
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["x-request-id", "x-gateway-model", "x-gateway-cost-usd"],
        )

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        return error_response(exc, {"x-request-id": request_id(request)})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "Not found." if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        return error_response(
            GatewayError(message, status=exc.status_code), {"x-request-id": request_id(request)}
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        error = GatewayError(
            f"Invalid request: {first.get('msg', 'bad input')}.", status=400, param=param
        )
        return error_response(error, {"x-request-id": request_id(request)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        error = GatewayError(
            "The gateway failed to handle this request.", status=500, code="internal_error"
        )
        return error_response(error, {"x-request-id": request_id(request)})

    return app
