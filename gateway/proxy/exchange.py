"""One client request in flight: what was resolved for it and what it cost when it ended."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from gateway import metrics
from gateway.accounting import Usage, cost_usd
from gateway.errors import GatewayError
from gateway.policy import PolicyResult
from gateway.registry.snapshot import Model

log = logging.getLogger("gateway")

_warned_unpriced: set[str] = set()


@dataclass(slots=True)
class Exchange:
    route: str
    client_api: str
    model: Model
    result: PolicyResult
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    usage: Usage | None = None
    first_token_at: float | None = None
    cost: float | None = None
    finished: bool = False
    sequence: int = 0  # next Responses stream sequence number, for a closing error frame
    # Seconds spent awaiting the upstream (gateway.proxy.timing) and the client's reads of a
    # stream: what the whole call took minus both is the gateway's own overhead.
    upstream_s: float = 0.0
    client_s: float = 0.0

    def headers(self) -> dict[str, str]:
        out = {"x-gateway-model": self.model.key, "x-request-id": self.request_id}
        if self.result.dropped:
            out["x-gateway-dropped-params"] = ",".join(self.result.dropped)
        return out

    def first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def price(self) -> float | None:
        """Compute the cost from the usage seen so far (once the call is complete)."""
        if self.usage is None:
            return None
        self.cost = cost_usd(self.usage, self.model.entry.pricing)
        return self.cost

    def finish(self, status: int, error: GatewayError | None = None) -> None:
        """Record the call once: request count, latency, tokens and spend."""
        if self.finished:
            return
        self.finished = True
        key = self.model.key
        duration = time.perf_counter() - self.started
        ttft = self.first_token_at - self.started if self.first_token_at is not None else None
        overhead = max(0.0, duration - self.upstream_s - self.client_s)
        metrics.record_call(self.route, self.model, status, duration, overhead, ttft,
                            error.reason if error is not None else None,
                            error is not None and error.upstream and not error.counted)
        if self.usage is not None:
            cost = self.cost if self.cost is not None else self.price()
            metrics.record_usage(self.model, self.usage, cost)
            if cost is None and key not in _warned_unpriced:
                _warned_unpriced.add(key)
                log.warning("model %s has no price in the registry: its spend is not counted", key)
