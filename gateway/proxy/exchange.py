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
        key, provider = self.model.key, self.model.provider_name
        now = time.perf_counter()
        metrics.requests_total.labels(self.route, key, provider, str(status)).inc()
        metrics.request_duration_seconds.labels(self.route, key, provider).observe(now - self.started)
        if self.first_token_at is not None:
            metrics.time_to_first_token_seconds.labels(self.route, key, provider).observe(
                self.first_token_at - self.started
            )
        if error is not None and error.upstream:
            metrics.upstream_errors_total.labels(key, provider, error.reason).inc()
        if self.usage is not None:
            cost = self.cost if self.cost is not None else self.price()
            metrics.record_usage(key, provider, self.usage, cost)
            if cost is None and key not in _warned_unpriced:
                _warned_unpriced.add(key)
                log.warning("model %s has no price in the registry: its spend is not counted", key)
