"""Prometheus metrics, named exactly as CONTRACT.md section 4 lists them.

In-process counters only: recording a call is a handful of dict lookups and additions,
so it stays on the hot path. Labels are low-cardinality by construction: `model` is a
registry key (unknown names never reach a label), `route` one of four.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.accounting import Usage

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

requests_total = Counter(
    "gateway_requests_total", "Requests by route, model, provider and status.",
    ["route", "model", "provider", "status"], registry=REGISTRY,
)
tokens_total = Counter(
    "gateway_tokens_total", "Tokens by type (input includes cached_input, output includes reasoning).",
    ["model", "provider", "type"], registry=REGISTRY,
)
cost_usd_total = Counter(
    "gateway_cost_usd_total", "Spend in USD computed from the registry's prices.",
    ["model", "provider"], registry=REGISTRY,
)
request_duration_seconds = Histogram(
    "gateway_request_duration_seconds", "Time from request to last byte.",
    ["route", "model", "provider"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
time_to_first_token_seconds = Histogram(
    "gateway_time_to_first_token_seconds", "Time from request to the first streamed token.",
    ["route", "model", "provider"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
upstream_errors_total = Counter(
    "gateway_upstream_errors_total", "Upstream failures by reason.",
    ["model", "provider", "reason"], registry=REGISTRY,
)
in_flight_requests = Gauge(
    "gateway_in_flight_requests", "Requests being served now.", registry=REGISTRY,
)
registry_models = Gauge(
    "gateway_registry_models", "Models in the live registry.", registry=REGISTRY,
)
registry_reloads_total = Counter(
    "gateway_registry_reloads_total", "Registry reloads by result.", ["result"], registry=REGISTRY,
)
unpriced_requests_total = Counter(
    "gateway_unpriced_requests_total", "Calls to a model the registry has no price for.",
    ["model"], registry=REGISTRY,
)


def record_usage(model: str, provider: str, usage: Usage, cost: float | None) -> None:
    tokens = tokens_total
    if usage.input:
        tokens.labels(model, provider, "input").inc(usage.input)
    if usage.cached_input:
        tokens.labels(model, provider, "cached_input").inc(usage.cached_input)
    if usage.output:
        tokens.labels(model, provider, "output").inc(usage.output)
    if usage.reasoning:
        tokens.labels(model, provider, "reasoning").inc(usage.reasoning)
    if cost is not None:
        cost_usd_total.labels(model, provider).inc(cost)
    else:
        unpriced_requests_total.labels(model).inc()


def render_metrics() -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(REGISTRY)
