"""Pooled HTTP clients per provider and the one way the gateway calls an upstream.

One `httpx.AsyncClient` per provider, made on first use and kept for the process's
life, over the aiohttp transport: httpx's default transport measured 350 req/s against
1,960 req/s for aiohttp's in a bare proxy on this machine. Failures become `GatewayError`s
here, so no caller sees a transport exception.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from gateway import metrics
from gateway.errors import (
    GatewayError,
    ProviderKeyMissing,
    UpstreamError,
    UpstreamTimeout,
    from_upstream,
)
from gateway.registry.schema import ProviderConfig
from gateway.registry.snapshot import Deployment, Model
from gateway.upstream import retry
from gateway.upstream.breaker import CLOSED, OPEN, Breakers

log = logging.getLogger("gateway")

MAX_CONNECTIONS = 1000
# What the transport can raise: httpx's own, and aiohttp's that it leaves unmapped.
TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class Target:
    """What a call is for: a path on whichever of the model's deployments serves it.

    The deployment, and with it the URL, key and timeouts, is chosen per attempt by the
    retry loop (gateway.upstream.retry), so a retry may go to another deployment.
    """

    model: Model
    path: str
    native_auth: bool = False  # Gemini's native API takes `x-goog-api-key`, not a bearer

    @property
    def provider(self) -> str:
        return self.model.provider_name

    @property
    def secrets(self) -> list[str]:
        """Every key this call may have used: scrubbed from anything the upstream says."""
        return [os.environ.get(d.api_key_env, "") for d in self.model.deployments if d.api_key_env]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One attempt's concrete request: URL, auth header and timeouts of one deployment."""

    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    provider: str
    deployment: str
    secret: str

    @property
    def where(self) -> str:
        if self.deployment == self.provider:
            return f"'{self.provider}'"
        return f"'{self.provider}' (deployment '{self.deployment}')"


def provider_base_url(cfg: ProviderConfig | Deployment) -> str:
    override = os.environ.get(cfg.base_url_env) if cfg.base_url_env else None
    return (override or cfg.base_url).rstrip("/")


def provider_key(provider_name: str, cfg: ProviderConfig | Deployment) -> str:
    if not cfg.api_key_env:
        return ""
    key = os.environ.get(cfg.api_key_env, "")
    if not key:
        raise ProviderKeyMissing(provider_name, cfg.api_key_env)
    return key


def target_for(model: Model, path: str, *, native_auth: bool = False) -> Target:
    return Target(model, path, native_auth)


def endpoint_for(target: Target, deployment: Deployment) -> Endpoint:
    """Build the attempt for `path` under the deployment's base URL.

    Gemini's native API authenticates with `x-goog-api-key`; everything OpenAI-shaped
    (OpenAI itself, Gemini's compat surface, Azure's v1 surface) with a bearer token.
    """
    key = provider_key(target.model.provider_name, deployment)
    headers = {"content-type": "application/json"}
    if key:
        if target.native_auth:
            headers["x-goog-api-key"] = key
        else:
            headers["authorization"] = f"Bearer {key}"
    connect = deployment.connect_timeout_s
    timeout = httpx.Timeout(deployment.timeout_s, connect=connect, pool=connect)
    return Endpoint(provider_base_url(deployment) + target.path, headers, timeout,
                    target.model.provider_name, deployment.name, key)


class Upstreams:
    """The process's upstream connection pools (one per provider name) and the breakers
    of every deployment; calls go through the retry loop."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._transports: dict[str, httpx.AsyncBaseTransport] = {}
        self.breakers = Breakers(_report_state)

    def client(self, provider: str) -> httpx.AsyncClient:
        client = self._clients.get(provider)
        if client is None:
            limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
            transport = AiohttpTransport(limits=limits)
            client = httpx.AsyncClient(transport=transport, timeout=None)
            self._clients[provider] = client
            self._transports[provider] = transport
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def post(self, target: Target, body: bytes,
                   failed: Callable[[GatewayError], None] | None = None) -> httpx.Response:
        """POST and read the whole answer, with retries; an error status becomes a GatewayError.
        `failed` hears of each failed attempt (gateway.upstream.retry.run)."""
        return await retry.run(target.model, self.breakers,
                               lambda deployment: self._post(endpoint_for(target, deployment), body),
                               on_failure=failed)

    async def open_stream(self, target: Target, body: bytes,
                          failed: Callable[[GatewayError], None] | None = None) -> httpx.Response:
        """POST and return once a 2xx status and headers are in (retried until then); the
        body is the caller's to read, and from here on nothing is retried."""
        return await retry.run(target.model, self.breakers,
                               lambda deployment: self._open(endpoint_for(target, deployment), body),
                               on_failure=failed)

    def _request(self, endpoint: Endpoint, body: bytes) -> tuple[httpx.AsyncBaseTransport, httpx.Request]:
        """The request, for the provider's transport itself.

        `AsyncClient.send` adds what the gateway does not use (auth flows, redirects, a
        cookie jar shared by every caller, event hooks, a log line per request) and
        `build_request` parses the URL again each time: together about a quarter of a
        proxied call's CPU. The transport is the same pooled aiohttp one; the client stays for
        closing it.
        """
        transport = self._transports.get(endpoint.provider)
        if transport is None:
            self.client(endpoint.provider)
            transport = self._transports[endpoint.provider]
        request = httpx.Request("POST", _parsed_url(endpoint.url), content=body, headers=endpoint.headers,
                                extensions={"timeout": endpoint.timeout.as_dict()})
        return transport, request

    async def _post(self, endpoint: Endpoint, body: bytes) -> httpx.Response:
        transport, request = self._request(endpoint, body)
        try:
            response = await transport.handle_async_request(request)
            await response.aread()
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, endpoint.where) from None
        if response.status_code >= 400:
            raise from_upstream(response.status_code, response.content, dict(response.headers), [endpoint.secret])
        return response

    async def _open(self, endpoint: Endpoint, body: bytes) -> httpx.Response:
        transport, request = self._request(endpoint, body)
        try:
            response = await transport.handle_async_request(request)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, endpoint.where) from None
        if response.status_code >= 400:
            try:
                await response.aread()
            except TRANSPORT_ERRORS as exc:
                raise transport_error(exc, endpoint.where) from None
            finally:
                await response.aclose()
            raise from_upstream(response.status_code, response.content, dict(response.headers), [endpoint.secret])
        if response.headers.get("content-type", "").startswith("text/html"):
            # A proxy's or portal's page with a 200: no stream will come; say so before streaming.
            await response.aclose()
            raise UpstreamError(f"The upstream provider {endpoint.where} answered a stream with an HTML page.",
                                code="upstream_invalid_response", reason="invalid_response")
        return response


@functools.lru_cache(maxsize=1024)
def _parsed_url(url: str) -> httpx.URL:
    """httpx parses a URL in pure Python (15-20 us); a deployment's few URLs parse once."""
    return httpx.URL(url)


def _report_state(model: str, deployment: str, state: int, initial: bool = False) -> None:
    metrics.deployment_state.labels(model, deployment).set(state)
    if initial:
        return  # a new breaker starts closed: the gauge shows it, no log line needed
    if state == OPEN:
        log.warning("deployment %s of %s is taken out after repeated failures", deployment, model)
    elif state == CLOSED:
        log.info("deployment %s of %s is back in service", deployment, model)


async def iter_bytes(response: httpx.Response, target: Target) -> AsyncIterator[bytes]:
    """The body as it arrives; a broken connection or a stall becomes a GatewayError."""
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc, f"'{target.provider}'") from None
    finally:
        await response.aclose()


def transport_error(exc: BaseException, where: str) -> GatewayError:
    """Name what went wrong without echoing anything that could hold a key.

    The aiohttp transport maps exceptions by aiohttp's class tree, not by what happened:
    a refused connection and a server that hangs up before answering both arrive as
    httpx.ConnectTimeout, a connect timeout too, and a malformed answer is a raw
    aiohttp.ClientResponseError. So the cause decides (tests/e2e/test_faults.py covers each).
    """
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        error = UpstreamTimeout(f"Could not connect to the upstream provider {where} in time.")
        error.reason = "connect_timeout"
        return error
    if isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError) or isinstance(
        exc, httpx.ReadTimeout | httpx.PoolTimeout | httpx.WriteTimeout
    ) or (isinstance(exc, httpx.TimeoutException) and exc.__cause__ is None):
        return UpstreamTimeout(f"The upstream provider {where} did not answer in time.")
    if isinstance(cause, aiohttp.ClientConnectorError) or isinstance(exc, httpx.ConnectError):
        return UpstreamError(
            f"Could not connect to the upstream provider {where}.",
            code="upstream_unreachable",
            reason="connect_error",
        )
    if isinstance(cause, aiohttp.ClientResponseError | httpx.RemoteProtocolError):
        return UpstreamError(
            f"The upstream provider {where} sent an answer that is not valid HTTP.",
            code="upstream_invalid_response",
            reason="invalid_response",
        )
    return UpstreamError(
        f"The connection to the upstream provider {where} failed ({type(cause).__name__}).",
        code="upstream_connection_error",
        reason="connection_error",
    )
