"""The three phases of an upstream call, each with its own failure.

encode (client request -> upstream body), call (the upstream, retried), decode (upstream
answer -> client answer). A translator that trips over a value's shape while encoding was
fed a client value it cannot take: a 400. While decoding, the upstream sent something it
cannot read: a 502. The phase says which; nothing has to remember whether a request went out.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from time import perf_counter
from types import TracebackType
from typing import Any

import httpx
import orjson

from gateway.errors import BadRequest, UpstreamError
from gateway.proxy.exchange import Leg
from gateway.received import Received
from gateway.upstream.client import Target, Upstreams, target_for

log = logging.getLogger("gateway")

# What a translator raises when a value has a shape it does not expect.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)


def _log(leg: Leg, exc: Exception) -> None:
    log.warning(
        "request %s for %s: cannot translate (%s: %s)",
        leg.ex.request_id,
        leg.model.key,
        type(exc).__name__,
        exc,
        exc_info=log.isEnabledFor(logging.DEBUG),
    )


class _Phase:
    """`with encoding(leg):` / `with decoding(leg):` turn a translator's shape error into
    the phase's own error. A class, not @contextmanager: that costs a generator, a wrapper
    and two more frames on every call, twice per request."""

    __slots__ = ("_leg",)

    def __init__(self, leg: Leg) -> None:
        self._leg = leg

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, SHAPE_ERRORS):
            _log(self._leg, exc)
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> Exception:
        raise NotImplementedError


class encoding(_Phase):  # lower case: it reads as a function, `with encoding(leg):`
    __slots__ = ()

    def _error(self, exc: Exception) -> Exception:
        return BadRequest(
            f"The request has a value this model's API cannot take ({type(exc).__name__}: "
            f"{str(exc)[:200]}).",
            code="invalid_request_body",
        )


def invalid_response(what: str = "a body the gateway cannot read") -> UpstreamError:
    return UpstreamError(
        f"The upstream answered with {what}.",
        code="upstream_invalid_response",
        reason="invalid_response",
    )


class decoding(_Phase):  # lower case, like encoding
    __slots__ = ()

    def _error(self, exc: Exception) -> Exception:
        return invalid_response()


def encode(leg: Leg, body: dict[str, Any]) -> tuple[Target, bytes]:
    """The encode phase: the model's wire builds the upstream request for `body`."""
    with encoding(leg):
        upstream = leg.model.wire.request(leg, body)
        return target_for(
            leg.model, upstream.path, native_auth=upstream.native_auth
        ), upstream.encoded()


def parse_object(content: bytes) -> dict[str, Any]:
    """The first step of decoding: the upstream's answer as a JSON object."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise invalid_response("a body that is not JSON") from None
    if not isinstance(data, dict):
        raise invalid_response("an unexpected JSON value")
    return data


async def post(leg: Leg, upstreams: Upstreams, target: Target, body: bytes) -> httpx.Response:
    """The call phase, unstreamed: timed as upstream time, each failed attempt noted."""
    leg.ex.sent = True
    started = perf_counter()
    try:
        return await upstreams.post(
            target, body, failed=lambda e: leg.ex.attempt_failed(leg.model, e)
        )
    finally:
        leg.ex.upstream_s += perf_counter() - started


async def open_stream(
    leg: Leg, upstreams: Upstreams, target: Target, body: bytes
) -> httpx.Response:
    """The call phase of a stream, until its status and headers are in."""
    leg.ex.sent = True
    started = perf_counter()
    try:
        return await upstreams.open_stream(
            target, body, failed=lambda e: leg.ex.attempt_failed(leg.model, e)
        )
    finally:
        leg.ex.upstream_s += perf_counter() - started


async def chunks(leg: Leg, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The upstream's streamed body as it arrives, every wait for the next chunk timed.

    Until the stream's usage arrives its bytes are kept (references, not copies), so a call
    cut before then is billed for all the output that came, not only what was relayed."""
    ex = leg.ex
    received = ex.received = Received(leg.model.wire)
    it = source.__aiter__()
    try:
        while True:
            started = perf_counter()
            try:
                chunk = await it.__anext__()
            except StopAsyncIteration:
                return
            finally:
                ex.upstream_s += perf_counter() - started
            if ex.usage is None:
                received.add(chunk)
            yield chunk
    finally:
        # Closed early (client gone, error downstream): release the upstream connection now,
        # not whenever the inner generator is collected.
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()
