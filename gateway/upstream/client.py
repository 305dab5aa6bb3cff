"""Pooled HTTP clients per provider and the one way the gateway calls an upstream.

One `httpx.AsyncClient` per provider, made on first use and kept for the process's
life, over the aiohttp transport: httpx's default transport measured 350 req/s against
1,960 req/s for aiohttp's in a bare proxy on this machine. Failures become `GatewayError`s
here, so no caller sees a transport exception.

This module is the one door upstream bytes come in by, and it does not trust them:
- every byte (a whole answer in `_post`, a stream in `iter_bytes`, an error body) is
  decoded here with a cap (`UpstreamLimits`) and scrubbed of the key the call used
  (gateway.errors.Scrubber) before any caller sees it;
- an answer that is not 2xx is an error, a 3xx included (redirects are never followed);
- the pools keep no cookies: a `Set-Cookie` from one call never rides on another's.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import httpx

from gateway import metrics
from gateway.capacity import overloaded
from gateway.errors import (
    GatewayError,
    ProviderKeyMissing,
    Scrubber,
    UpstreamError,
    UpstreamTimeout,
    from_upstream,
)
from gateway.registry.schema import ProviderConfig
from gateway.registry.snapshot import Deployment, Model
from gateway.settings import Settings
from gateway.upstream import retry
from gateway.upstream.body import MB, decoded, read_capped, too_large
from gateway.upstream.breaker import CLOSED, OPEN, Breakers
from gateway.upstream.slots import NO_SLOT, LocalLimit, Slot, Slots
from gateway.upstream.transport import WIRE, PooledTransport, Wire, wire_for

log = logging.getLogger("gateway")

# Only encodings the gateway can inflate with a cap; aiohttp's default would add more
# when optional packages (brotli, zstandard) happen to be installed.
ACCEPT_ENCODING = "gzip, deflate"
# An error answer is read for its message only.
MAX_ERROR_BODY = 1 * MB


@dataclass(frozen=True, slots=True)
class UpstreamLimits:
    """How much an upstream may send, inflated: one whole answer, one stream event."""

    max_body_bytes: int = 64 * MB
    max_event_bytes: int = 16 * MB


DEFAULT_LIMITS = UpstreamLimits()


def upstream_limits(settings: Settings) -> UpstreamLimits:
    return UpstreamLimits(
        int(settings.max_upstream_body_mb * MB), int(settings.max_upstream_event_mb * MB)
    )


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
    # Built once per endpoint, not per call (Upstreams caches endpoints): the parsed URL,
    # the normalized header list, the transport's timeout dict, the key's scrubber.
    parsed_url: httpx.URL
    request_headers: httpx.Headers
    timeouts: dict[str, float | None]
    scrubber: Scrubber
    wire: Wire  # the same, as the pooled transport sends it (gateway.upstream.transport)

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
    headers = {"content-type": "application/json", "accept-encoding": ACCEPT_ENCODING}
    if key:
        if target.native_auth:
            headers["x-goog-api-key"] = key
        else:
            headers["authorization"] = f"Bearer {key}"
    connect = deployment.connect_timeout_s
    timeout = httpx.Timeout(deployment.timeout_s, connect=connect, pool=connect)
    url = provider_base_url(deployment) + target.path
    return Endpoint(
        url,
        headers,
        timeout,
        target.model.provider_name,
        deployment.name,
        key,
        httpx.URL(url),
        httpx.Headers(headers),
        timeout.as_dict(),
        Scrubber((key,)),
        wire_for(url, headers, timeout),
    )


# Endpoints kept per process; a registry reload brings new Deployment objects, so the
# cache is emptied when it grows past this rather than tracking which ones are gone.
MAX_ENDPOINTS = 4096


class Upstreams:
    """The process's upstream connection pools (one per provider name) and the breakers
    of every deployment; calls go through the retry loop."""

    def __init__(self, limits: UpstreamLimits | None = None) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._transports: dict[str, httpx.AsyncBaseTransport] = {}
        self.breakers = Breakers(_report_state)
        self.slots = Slots()  # the registry's max_connections (gateway.upstream.slots)
        self.limits = limits or DEFAULT_LIMITS
        # (id of the Deployment, path, native auth) -> (the Deployment, its key, base URL, the
        # Endpoint): each attempt re-reads the key and base URL from the environment, as
        # endpoint_for does, and builds an Endpoint only when one of them changed.
        self._endpoints: dict[tuple[int, str, bool], tuple[Deployment, str, str, Endpoint]] = {}

    def endpoint(self, target: Target, deployment: Deployment) -> Endpoint:
        """`endpoint_for(target, deployment)`, built once and reused while nothing changed."""
        key = provider_key(target.model.provider_name, deployment)
        base = provider_base_url(deployment)
        cache_key = (id(deployment), target.path, target.native_auth)
        entry = self._endpoints.get(cache_key)
        if entry is not None and entry[0] is deployment and entry[1] == key and entry[2] == base:
            return entry[3]
        endpoint = endpoint_for(target, deployment)
        if len(self._endpoints) >= MAX_ENDPOINTS:
            self._endpoints.clear()
        self._endpoints[cache_key] = (deployment, key, base, endpoint)
        return endpoint

    def configure(self, limits: UpstreamLimits) -> None:
        self.limits = limits

    def mount(self, provider: str, transport: httpx.AsyncBaseTransport) -> None:
        """Serve `provider`'s calls with this transport instead of a pooled aiohttp one (the
        tests mount in-process fakes here, before the app starts)."""
        self._transports[provider] = transport
        self._clients[provider] = httpx.AsyncClient(transport=transport)

    def transport(self, provider: str) -> httpx.AsyncBaseTransport:
        """The transport `provider`'s calls go through (made on first use)."""
        transport = self._transports.get(provider)
        if transport is None:
            self.client(provider)
            transport = self._transports[provider]
        return transport

    def client(self, provider: str) -> httpx.AsyncClient:
        client = self._clients.get(provider)
        if client is None:
            # No limit in the connector: aiohttp's wait for a pooled connection cannot be told
            # from a connect timeout, so the gateway counts connections itself (Slots).
            transport = PooledTransport(limits=httpx.Limits(max_connections=None))
            transport.client = functools.partial(_session, transport)
            client = httpx.AsyncClient(transport=transport, timeout=None)
            self._clients[provider] = client
            self._transports[provider] = transport
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def post(
        self, target: Target, body: bytes, failed: Callable[[GatewayError], None] | None = None
    ) -> httpx.Response:
        """POST and read the whole answer, with retries; an error status becomes a GatewayError.
        `failed` hears of each failed attempt (gateway.upstream.retry.run)."""
        return await retry.run(
            target.model,
            self.breakers,
            lambda deployment: self._post(
                self.endpoint(target, deployment), body, self.slots.take(target.model, deployment)
            ),
            on_failure=failed,
        )

    async def open_stream(
        self, target: Target, body: bytes, failed: Callable[[GatewayError], None] | None = None
    ) -> httpx.Response:
        """POST and return once a 2xx status and headers are in (retried until then); the
        body is the caller's to read, and from here on nothing is retried."""
        return await retry.run(
            target.model,
            self.breakers,
            lambda deployment: self._open(
                self.endpoint(target, deployment), body, self.slots.take(target.model, deployment)
            ),
            on_failure=failed,
        )

    def _request(
        self, endpoint: Endpoint, body: bytes
    ) -> tuple[httpx.AsyncBaseTransport, httpx.Request]:
        """The request, for the provider's transport itself.

        `AsyncClient.send` adds what the gateway does not use (auth flows, redirects, a
        cookie jar shared by every caller, event hooks, a log line per request) and
        `build_request` parses the URL again each time: together about a quarter of a
        proxied call's CPU. The transport is the same pooled aiohttp one; the client stays for
        closing it. The body goes in as a stream, read at once: given as `content`, httpx
        would add Host and Content-Length by building and normalizing the whole header list
        again on every call, and aiohttp adds both itself.
        """
        transport = self.transport(endpoint.provider)
        request = httpx.Request(
            "POST",
            endpoint.parsed_url,
            stream=httpx.ByteStream(body),
            headers=endpoint.request_headers,  # a Headers is copied as is, not normalized again
            extensions={"timeout": endpoint.timeouts, WIRE: endpoint.wire},
        )
        request.read()
        return transport, request

    async def _post(self, endpoint: Endpoint, body: bytes, slot: Slot) -> httpx.Response:
        transport, request = self._request(endpoint, body)
        try:
            response = await transport.handle_async_request(request)
            ok = 200 <= response.status_code < 300
            content = await read_capped(
                response,
                self.limits.max_body_bytes if ok else MAX_ERROR_BODY,
                endpoint.scrubber,
                lenient=not ok,
            )
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, endpoint.where) from None
        finally:
            slot.release()
        response._content = content  # decoded, capped and scrubbed: what every caller reads
        if not ok:
            raise from_upstream(
                response.status_code, content, dict(response.headers), [endpoint.secret]
            )
        return response

    async def _open(self, endpoint: Endpoint, body: bytes, slot: Slot) -> httpx.Response:
        transport, request = self._request(endpoint, body)
        try:
            response = await transport.handle_async_request(request)
        except BaseException as exc:
            slot.release()
            if isinstance(exc, TRANSPORT_ERRORS):
                raise transport_error(exc, endpoint.where) from None
            raise
        # The body is read from aiohttp's reader (the transport's READER extension), but
        # closing goes through the stream: the connection back to its pool, and the slot.
        stream = response.stream
        if slot is not NO_SLOT and isinstance(stream, httpx.AsyncByteStream):
            # The slot is the connection's: back when the answer is closed, however it ends.
            response.stream = _Released(stream, slot)
        if not 200 <= response.status_code < 300:
            try:
                content = await read_capped(
                    response, MAX_ERROR_BODY, endpoint.scrubber, lenient=True
                )
            except TRANSPORT_ERRORS as exc:
                raise transport_error(exc, endpoint.where) from None
            finally:
                await response.aclose()
            raise from_upstream(
                response.status_code, content, dict(response.headers), [endpoint.secret]
            )
        response.extensions["gateway_secret"] = endpoint.secret
        response.extensions["gateway_event_cap"] = self.limits.max_event_bytes
        # Sent: the httpx Request (its headers, and the body, which may be a long chat
        # history) is not needed while the stream is held.
        response._request = None
        if response.headers.get("content-type", "").startswith("text/html"):
            # A proxy's or portal's page with a 200: no stream will come; say so before streaming.
            await response.aclose()
            raise UpstreamError(
                f"The upstream provider {endpoint.where} answered a stream with an HTML page.",
                code="upstream_invalid_response",
                reason="invalid_response",
            )
        return response


class _Released(httpx.AsyncByteStream):
    """An answer's stream that gives its slot back when it is closed."""

    __slots__ = ("_slot", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, slot: Slot) -> None:
        self._stream = stream
        self._slot = slot

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._slot.release()


def _session(transport: PooledTransport) -> aiohttp.ClientSession:
    """The transport's own session, except that it keeps no cookies (DummyCookieJar)."""
    limit = transport.limits.max_connections
    connector = aiohttp.TCPConnector(
        keepalive_timeout=transport.limits.keepalive_expiry,
        ssl=transport.ssl_context,
        limit=limit or 0,
    )
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def _report_state(model: str, deployment: str, state: int, initial: bool = False) -> None:
    metrics.deployment_state.labels(model, deployment).set(state)
    if initial:
        return  # a new breaker starts closed: the gauge shows it, no log line needed
    if state == OPEN:
        log.warning("deployment %s of %s is taken out after repeated failures", deployment, model)
    elif state == CLOSED:
        log.info("deployment %s of %s is back in service", deployment, model)


_EVENT_ENDS = (b"\n\n", b"\r\n\r\n", b"\r\r")


async def iter_bytes(response: httpx.Response, target: Target) -> AsyncIterator[bytes]:
    """The body as it arrives, decoded and scrubbed of the call's key; a broken connection
    or a stall becomes a GatewayError, and so does one stream event past the event cap."""
    secret = response.extensions.get("gateway_secret", "")
    cap = response.extensions.get("gateway_event_cap", DEFAULT_LIMITS.max_event_bytes)
    scrubber = Scrubber((secret,))
    pending = 0  # bytes since the last event boundary
    tail = b""  # the last bytes seen, for a boundary split across chunks
    try:
        async for chunk in decoded(response, cap):
            if chunk.endswith(b"\n\n"):  # an SSE chunk ends where its last event does
                pending = 0
            else:
                window = tail + chunk
                end = max(
                    window.rfind(mark) + len(mark) if mark in window else -1 for mark in _EVENT_ENDS
                )
                pending = len(window) - end if end >= 0 else pending + len(chunk)
            if pending > cap:
                raise too_large("stream event", cap)
            tail = chunk[-3:]
            out = scrubber.feed(chunk)
            if out:
                yield out
        rest = scrubber.flush()
        if rest:
            yield rest
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
    os_error = getattr(cause, "os_error", cause)
    if isinstance(os_error, OSError) and os_error.errno in (errno.EMFILE, errno.ENFILE):
        # Out of file descriptors: this process's limit, not the upstream's failure.
        return LocalLimit(
            overloaded("descriptors", "no file descriptor left for an upstream connection"),
            "provider",
        )
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        error = UpstreamTimeout(f"Could not connect to the upstream provider {where} in time.")
        error.reason = "connect_timeout"
        return error
    if (
        isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError)
        or isinstance(exc, httpx.ReadTimeout | httpx.PoolTimeout | httpx.WriteTimeout)
        or (isinstance(exc, httpx.TimeoutException) and exc.__cause__ is None)
    ):
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
