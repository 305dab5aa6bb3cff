"""Prometheus metrics of admission and the counters. Labels are bounded: refusal reasons
are a fixed set; a budget is labelled by the operator's name for its key (`team` empty)
or its team (`key` empty) and one of the four periods, Redis operations by script name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from gateway.metrics import REGISTRY, FastValue

REASONS = (
    "budget",
    "unpriced",
    "requests",
    "tokens",
    "parallel",
    "too_large",
    "counters_unavailable",
)

refusals_total = Counter(
    "gateway_admission_refusals_total",
    "Calls refused before the upstream by reason: budget, unpriced (a budget cannot reserve for a model "
    "without a price), requests / tokens (per-minute limits), parallel, too_large (above a per-minute limit "
    "alone), counters_unavailable (Redis away and GATEWAY_REDIS_FAILURE=closed).",
    ["reason"],
    registry=REGISTRY,
)
for _reason in REASONS:
    refusals_total.labels(_reason)

reservations_outstanding = Gauge(
    "gateway_reservations_outstanding",
    "Budget reservations held by calls in flight.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
lowered_total = Counter(
    "gateway_max_output_tokens_lowered_total",
    "Calls whose max output tokens admission lowered to what the budget pays for.",
    registry=REGISTRY,
)
# mostrecent: every worker and replica reports what the shared counters said last.
budget_spent_usd = Gauge(
    "gateway_budget_spent_usd",
    "Spend counted against a budget in its current period (settled calls).",
    ["key", "team", "period"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
budget_remaining_usd = Gauge(
    "gateway_budget_remaining_usd",
    "What a budget has left in its current period: limit - spent - reserved (calls in flight).",
    ["key", "team", "period"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
redis_seconds = Histogram(
    "gateway_redis_seconds",
    "Round-trip time of the counters' Redis scripts.",
    ["op"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
    registry=REGISTRY,
)
counters_degraded = Gauge(
    "gateway_counters_degraded",
    "1 while this process cannot use the shared counters (Redis away or being rebuilt): with "
    "GATEWAY_REDIS_FAILURE=open it enforces limits alone, per replica; with closed it refuses (503).",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
unshared_admissions_total = Counter(
    "gateway_counters_unshared_admissions_total",
    "Calls admitted by this replica's own counters while Redis was away (GATEWAY_REDIS_FAILURE=open).",
    registry=REGISTRY,
)
local_admissions_total = Counter(
    "gateway_counters_local_admissions_total",
    "Calls admitted (and settled) from this process's shares of the shared counters, in memory, "
    "far from every limit they touch.",
    registry=REGISTRY,
)
settlements_queued = Gauge(
    "gateway_counters_settlements_queued",
    "Settlements waiting in memory for Redis to come back.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
settlements_dropped_total = Counter(
    "gateway_counters_settlements_dropped_total",
    "Settlements not applied to the shared counters: the queue was full, or Redis came back empty and "
    "was rebuilt from the ledger (which holds those calls).",
    ["reason"],
    registry=REGISTRY,
)

# Moved once or twice per call: without the library's per-call checks.
reservations_held = FastValue(reservations_outstanding)
local_admissions = FastValue(local_admissions_total)
