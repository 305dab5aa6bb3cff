"""The HTTP server's own limits: what a client may cost before its request reaches the app.

uvicorn's httptools protocol, plus four limits it lacks (docs/hardening.md):
- request line and headers together are at most `max_header_bytes`; past that the
  connection gets a 431 and is closed at once (httptools itself has no limit, and
  building a huge header costs time quadratic in its size);
- the headers must be complete within `header_timeout_s` of the connection opening or
  the previous answer ending; the body within `body_timeout_s` of the headers. A
  client that sends half a request and goes idle is closed, not kept for good.
  Neither clock runs while the answer is sent, so a long stream is never cut;
- at most `max_connections` connections per process (by default what the descriptor
  limit allows, gateway.capacity): one over the limit closes the oldest connection that
  is waiting for a request (idle keep-alive, or headers not yet complete), never one
  whose request is being served; with none such, the new one gets a 503
  `gateway_overloaded` with `retry-after` and is closed.

Each check is a counter or a stored deadline per request: nothing per byte beyond one
addition, and no timer per request (a timer armed and cancelled twice per request cost
4.7 us of CPU in a synthetic loop; a deadline is one float). One sweep per process every
`SWEEP_S` closes the connections past their deadline, so a timeout is met within
`SWEEP_S` of when it falls due.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.capacity import overloaded, stream_capacity
from gateway.errors import GatewayError
from gateway.hangup import SCOPE_KEY, Hangup
from gateway.settings import Settings, from_env

PROTOCOL = "gateway.server:GatewayHttpProtocol"  # for uvicorn.run's import string
SWEEP_S = 0.25


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> ServerLimits:
        return cls(
            settings.max_header_bytes,
            settings.header_timeout_s,
            settings.body_timeout_s,
            settings.max_connections or stream_capacity(),
        )


def _response(status: int, reason: bytes, error: GatewayError) -> bytes:
    body = orjson.dumps(error.body())
    extra = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in error.headers.items())
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"%sconnection: close\r\n\r\n" % (status, reason, len(body), extra)
    ) + body


_NO_WAITERS: tuple[()] = ()
_NO_PIPELINE: tuple[()] = ()


class LazyEvent(asyncio.Event):
    """An `asyncio.Event` that makes its deque of waiters only when someone waits.

    uvicorn gives each connection two Events that a held stream never waits on (its write
    flow control, and each request's "more body arrived"); an empty deque is 760 bytes,
    so the two were 1.5 KB of every held stream (docs/scale.md). Event's `set` only
    iterates `_waiters`, so an empty tuple stands in for it until the first `wait`.
    """

    def __init__(self) -> None:  # not Event's own: that makes the deque
        self._value = False
        self._waiters = _NO_WAITERS  # type: ignore[assignment]

    async def wait(self) -> Literal[True]:
        if self._value:  # uvicorn's receive() waits on a request whose body is all in
            return True
        if self._waiters is _NO_WAITERS:  # type: ignore[comparison-overlap]
            self._waiters = collections.deque()
        return await super().wait()


class GatewayHttpProtocol(HttpToolsProtocol):
    # Slots, not uvicorn's per-connection __dict__: seven more keys there grow every
    # connection's dict to its next size (about 1 KB per held stream, docs/scale.md).
    __slots__ = (
        "_deadline",
        "_head_bytes",
        "_in_head",
        "_limits",
        "_refused",
        "_shared",
        "_waiting",
    )

    limits: ServerLimits | None = None  # None: from the environment (the CLI puts flags there)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.limits is None:
            cls.limits = ServerLimits.of(from_env())
        self._limits: ServerLimits = cls.limits
        # uvicorn's queue of pipelined requests, an empty deque (760 bytes) on every
        # connection: made only when a request comes while another is being answered
        # (on_headers_complete); uvicorn only tests, iterates and pops it otherwise.
        self.pipeline = _NO_PIPELINE  # type: ignore[assignment]
        self._in_head = True  # receiving a request line and headers (or waiting for one)
        self._head_bytes = 0
        self._refused = False  # answered 431/408 and closing: nothing more is parsed
        self._deadline: float | None = None  # loop time by which the head or body must be in
        shared = getattr(self.server_state, "gateway_shared", None)
        if shared is None:
            shared = _Shared()
            self.server_state.gateway_shared = shared  # type: ignore[attr-defined]
        self._shared: _Shared = shared
        self._waiting = shared.waiting

    # ---- the connection limit --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        writable = LazyEvent()  # uvicorn's flow control, set while writes are not paused
        writable.set()
        self.flow._is_writable_event = writable
        if len(self.connections) > self._limits.max_connections:
            oldest = next(iter(self._waiting), None)
            if oldest is None:  # every connection is serving a request: this one is refused
                error = overloaded(
                    "client_connections",
                    f"{self._limits.max_connections} client connections per worker",
                )
                transport.write(_response(503, b"Service Unavailable", error))
                transport.close()
                return
            oldest._drop()
        self._waiting[self] = None
        self._arm(self._limits.header_timeout_s)
        if self._shared.sweeper is None:
            self._shared.sweeper = self.loop.call_later(
                SWEEP_S, self._shared.sweep, self.loop, self.connections
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._waiting.pop(self, None)
        super().connection_lost(exc)
        # After uvicorn marked the cycles disconnected: the app's callbacks see it so.
        cycles = [c for c, _ in self.pipeline]
        if self.cycle is not None:
            cycles.append(self.cycle)
        for cycle in cycles:
            if not cycle.response_complete:
                hangup = cycle.scope.get(SCOPE_KEY)
                if isinstance(hangup, Hangup):
                    hangup.fire()

    def _drop(self) -> None:
        self._disarm()
        self._waiting.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()

    # ---- the header size limit ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # A head still incomplete past the limit: refused before it grows any further.
        if self._in_head and self._head_bytes > self._limits.max_header_bytes and not self._refused:
            self._too_large()

    def _too_large(self) -> None:
        self._refuse(
            431,
            b"Request Header Fields Too Large",
            GatewayError(
                f"The request line and headers are larger than the gateway's limit of "
                f"{self._limits.max_header_bytes // 1024} KB (GATEWAY_MAX_HEADER_KB).",
                status=431,
                code="request_header_too_large",
            ),
        )

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def _refuse(self, status: int, reason: bytes, error: GatewayError) -> None:
        self._refused = True
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # no answer being written now
            self.transport.write(_response(status, reason, error))
        elif not cycle.response_started:  # the app is still reading this request's body
            self.transport.write(_response(status, reason, error))
            cycle.disconnected = True  # its answer, if it gets to one, goes nowhere
        self._drop()

    # ---- the receive timeouts ------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        # More bytes than the limit came in with this head (a body may share its reads):
        # measure the head itself.
        if self._head_bytes > self._limits.max_header_bytes:
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            if size > self._limits.max_header_bytes:
                self._too_large()
                return
        self._in_head = False
        self._head_bytes = 0
        self._waiting.pop(self, None)
        self._arm(self._limits.body_timeout_s)
        self.scope[SCOPE_KEY] = Hangup()  # type: ignore[literal-required]
        before = self.cycle
        queued = before is not None and not before.response_complete  # uvicorn queues this one
        if queued and self.pipeline is _NO_PIPELINE:  # type: ignore[comparison-overlap]
            self.pipeline = collections.deque()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # a new request's cycle: nobody waits yet
            cycle.message_event = LazyEvent()

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_head = True  # what comes next is another request's head
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline and self._in_head:
            self._waiting[self] = None
            self._arm(self._limits.header_timeout_s)

    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds

    def _disarm(self) -> None:
        self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._in_head and self._head_bytes == 0:
            self._drop()  # nothing sent at all (or an idle keep-alive): just close
            return
        if not self._in_head and (self.cycle is None or self.cycle.response_started):
            self._drop()  # answered before its body came (a refusal): nothing more to say
            return
        what = "headers" if self._in_head else "body"
        self._refuse(
            408,
            b"Request Timeout",
            GatewayError(
                f"The request's {what} did not arrive in time.", status=408, code="request_timeout"
            ),
        )


class _Shared:
    """What a process's connections share: who waits for a request, and the one sweep."""

    __slots__ = ("sweeper", "waiting")

    def __init__(self) -> None:
        self.waiting: dict[GatewayHttpProtocol, None] = {}  # oldest first (dicts keep order)
        self.sweeper: asyncio.TimerHandle | None = None

    def sweep(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        now = loop.time()
        for conn in list(connections):
            deadline = getattr(conn, "_deadline", None)
            if deadline is not None and now >= deadline:
                conn._timed_out()
        # Kept running while connections exist; the next connection starts it again.
        self.sweeper = (
            loop.call_later(SWEEP_S, self.sweep, loop, connections) if connections else None
        )


def protocol_for(settings: Settings) -> type[GatewayHttpProtocol]:
    """The protocol class with these settings' limits (for a server run in-process)."""
    return type(
        "GatewayHttpProtocolBound", (GatewayHttpProtocol,), {"limits": ServerLimits.of(settings)}
    )
