"""One client request from the edge to its last byte, across retries and fallbacks.

The api layer opens an `Exchange` when the request comes in; each model tried gets a
`Leg` (the model and its policy result). `Exchange.finish()` is the one place a finished
call is recorded: it builds one `CallRecord` and hands it to every sink in the app state.
Everything a call learns on the way (usage, first token, failed attempts, fallbacks) is
noted on the Exchange and only emitted there. Usage is noted the moment it arrives, so a
call that is cut after it is billed exactly; a call that ends without it (the client
left, the stream broke) is billed from an estimate (gateway.received) and marked so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from gateway import metrics
from gateway.accounting import CallRecord, Handover, UpstreamFailure, Usage, cost_usd
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.errors import GatewayError
from gateway.policy import PolicyResult
from gateway.proxy.limits import estimate_input
from gateway.received import LARGE_BYTES, Received, estimate, output_tokens
from gateway.registry.snapshot import Model
from gateway.types import ClientAPI

log = logging.getLogger("gateway")

CLIENT_CLOSED = (
    499  # nginx's "client closed request": the status a call the client left is counted under
)

Sink = Callable[[CallRecord], None]

_counting: set[asyncio.Future[tuple[int, int]]] = (
    set()
)  # estimates being counted in a thread, held until done


@dataclass(slots=True)
class Leg:
    """One model's go at the request."""

    ex: Exchange
    model: Model
    result: PolicyResult

    @property
    def client_api(self) -> ClientAPI:
        return self.ex.client_api


@dataclass(slots=True)
class Exchange:
    route: str
    client_api: ClientAPI
    request_id: str
    sinks: Sequence[Sink]
    principal: Principal = ANONYMOUS
    # perf_counter when the gateway's own work began (the api layer sets it once the body
    # is read: the upload is the client's time), and the wall clock for the record.
    started: float = field(default_factory=time.perf_counter)
    time: float = field(default_factory=time.time)
    requested: Model | None = None  # the model the client named
    leg: Leg | None = None  # the model tried now; at the end, the one that answered or failed last
    usage: Usage | None = None  # the upstream's final usage, set as soon as it arrives
    estimated: bool = False  # usage counted offline by the gateway, not reported by the upstream
    running: Usage | None = None  # counts reported before the final usage (Gemini's on every chunk)
    received: Received | None = None  # the upstream stream's bytes, kept while no usage has arrived
    sent: bool = (
        False  # a request went upstream (gateway.proxy.phases): from then on it may be billed
    )
    body_size: int = 0  # the client's body in bytes: a large one is counted off the loop if need be
    first_token_at: float | None = None
    cost: Decimal | None = None
    priced: bool = False  # cost computed (it may be None: no price)
    service_tier: str | None = None  # the answer's: the tier the call was billed at
    streamed: bool = False
    sequence: int = 0  # next Responses stream sequence number, for a closing error frame
    # Seconds spent awaiting the upstream (gateway.proxy.phases) and the client's reads of a
    # stream: what the whole call took minus both is the gateway's own overhead.
    upstream_s: float = 0.0
    client_s: float = 0.0
    failures: list[UpstreamFailure] = field(default_factory=list)
    handovers: list[Handover] = field(default_factory=list)
    _noted: list[GatewayError] = field(default_factory=list)  # errors already in `failures`
    finished: bool = False
    extra_headers: dict[str, str] | None = (
        None  # set by admission: rate-limit headers, lowered max tokens
    )

    def begin(self, model: Model, result: PolicyResult) -> Leg:
        """The next model takes the request (the first one, or a fallback)."""
        if self.leg is None:
            self.requested = model
            metrics.in_flight.inc()
        self.leg = Leg(self, model, result)
        return self.leg

    def attempt_failed(self, model: Model, error: GatewayError) -> None:
        """An upstream attempt failed (the retry loop reports each one)."""
        if error.upstream and not any(error is seen for seen in self._noted):
            self._noted.append(error)
            self.failures.append(UpstreamFailure(model.key, model.provider_name, error.reason))

    def hand_over(self, error: GatewayError, fallback: Model, reason: str) -> None:
        assert self.leg is not None
        self.attempt_failed(self.leg.model, error)
        self.handovers.append(Handover(self.leg.model.key, fallback.key, reason))

    def headers(self) -> dict[str, str]:
        if self.leg is None:
            out = {"x-request-id": self.request_id}
        else:
            out = {"x-gateway-model": self.leg.model.key, "x-request-id": self.request_id}
            if self.leg.result.dropped:
                out["x-gateway-dropped-params"] = ",".join(self.leg.result.dropped)
        if self.extra_headers:
            out.update(self.extra_headers)
        return out

    def note_usage(self, usage: Usage, final: bool) -> None:
        """Usage as it arrives: a final count (or any after one) is the call's; a running
        count before it only stands in if the call is cut (Gemini repeats one on every chunk)."""
        if final or self.usage is not None:
            self.usage = usage
        else:
            self.running = usage

    def first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def price(self) -> Decimal | None:
        """Compute the cost from the usage seen so far (once the call is complete)."""
        if self.usage is None or self.leg is None:
            return None
        self.cost = cost_usd(self.usage, self.leg.model.entry.pricing, self.service_tier)
        self.priced = True
        return self.cost

    def finish(self, status: int, error: GatewayError | None = None) -> None:
        """Record the call, once, however it ended: one CallRecord to every sink."""
        if self.finished:
            return
        self.finished = True
        now = time.perf_counter()
        leg = self.leg
        if leg is not None:
            metrics.in_flight.dec()
            if error is not None:
                self.attempt_failed(leg.model, error)
        duration = now - self.started
        if leg is not None and self.usage is None and self._unreported(status):
            received = self.received
            large = self.body_size > LARGE_BYTES or (received is not None and received.large)
            if large and self._count_later(leg, status, error, duration):
                return
            self._estimate(self._count(leg), status)
        self._emit(status, error, duration)

    def _unreported(self, status: int) -> bool:
        """The upstream has (or may have) billed this call without saying for how much: the
        client left after the request went out, or a stream broke after bytes came."""
        received = self.received
        if status == CLIENT_CLOSED:
            return self.sent
        return received is not None and bool(received.chunks or received.dropped)

    def _count(self, leg: Leg, received: Received | None = None) -> tuple[int, int]:
        """(input, output) tokens by the offline tokenizer: the request, and what came."""
        received = received or self.received
        try:
            input_tokens = estimate_input(self.client_api, leg.result.params)
        except Exception:  # a body the estimator cannot walk must not lose the record
            log.exception("request %s: cannot estimate the input tokens", self.request_id)
            input_tokens = 0
        return input_tokens, output_tokens(received) if received is not None else 0

    def _estimate(self, counted: tuple[int, int], status: int) -> None:
        input_tokens, output = counted
        if status != CLIENT_CLOSED and not output and self.running is None:
            return  # a stream that failed before any output: the provider failed, not billed
        self.usage = estimate(input_tokens, output, self.running)
        self.estimated = True
        self.cost, self.priced = None, False  # priced again, from the estimate

    def _count_later(
        self, leg: Leg, status: int, error: GatewayError | None, duration: float
    ) -> bool:
        """A large request or stream is counted in a thread, off the event loop; the record follows."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        received = self.received
        kept = (
            None
            if received is None
            else Received(received.wire, list(received.chunks), received.size, received.dropped)
        )
        future = loop.run_in_executor(None, self._count, leg, kept)
        _counting.add(future)

        def done(counted: asyncio.Future[tuple[int, int]]) -> None:
            _counting.discard(counted)
            failed = counted.cancelled() or counted.exception() is not None
            self._estimate((0, 0) if failed else counted.result(), status)
            self._emit(status, error, duration)

        future.add_done_callback(done)
        return True

    def _emit(self, status: int, error: GatewayError | None, duration: float) -> None:
        leg = self.leg
        cost = self.cost if self.priced else self.price()  # an unpriced model is priced once too
        # Refused before any model was tried (a key's allow-list, the body, the policy): the
        # model asked for is the one the call is counted under.
        served = leg.model if leg is not None else self.requested
        record = CallRecord(
            request_id=self.request_id,
            time=self.time,
            principal=self.principal,
            route=self.route,
            client_api=self.client_api,
            model=self.requested.key if self.requested is not None else None,
            provider=served.provider_name if served is not None else None,
            answered_by=leg.model.key if leg is not None else None,
            status=status,
            usage=self.usage,
            cost=cost,
            duration_s=duration,
            overhead_s=max(0.0, duration - self.upstream_s - self.client_s),
            ttft_s=self.first_token_at - self.started if self.first_token_at is not None else None,
            streamed=self.streamed,
            disconnected=status == CLIENT_CLOSED,
            error_reason=error.reason if error is not None else None,
            estimated=self.estimated,
            failures=tuple(self.failures),
            handovers=tuple(self.handovers),
            served=served,
        )
        for sink in self.sinks:
            try:
                sink(record)
            except Exception:  # one broken sink must not cost the others their record
                log.exception("a call sink failed on request %s", self.request_id)
