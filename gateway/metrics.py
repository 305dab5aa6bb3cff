"""Prometheus metrics, named as docs/metrics.md lists them, plus the gateway's
own overhead and, beside ours, the OpenTelemetry GenAI semantic-convention histograms.

In-process counters by default: recording a call is a handful of dict lookups and
additions, so it stays on the hot path. With `PROMETHEUS_MULTIPROC_DIR` set (the CLI sets
it for `--workers N`), prometheus-client writes every value to per-process files instead
and `/metrics` sums them (gateway.multiprocess), so any worker answers for all of them.

Labels are low-cardinality by construction: `model` is a registry key (a request for an
unknown name is counted with empty model and provider labels, never under that name),
`route` one of three, `status` an HTTP status, `reason` an error reason from gateway.errors.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values

from gateway import multiprocess
from gateway.accounting import CallRecord, Usage
from gateway.registry.snapshot import Model
from gateway.translate.ids import bare_model

log = logging.getLogger("gateway")

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# The gateway's own share of a call is sub-millisecond to a few milliseconds: finer buckets.
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
# OpenTelemetry GenAI semantic conventions: the ExplicitBucketBoundaries each metric
# SHOULD use (gen_ai.client.token.usage, gen_ai.client.operation.duration,
# gen_ai.server.time_to_first_token), so these histograms merge with other GenAI
# instrumentation's.
GENAI_TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
GENAI_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
GENAI_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

_ROUTED = ["route", "model", "provider"]
_GENAI = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]

requests_total = Counter(
    "gateway_requests_total",
    "Requests by route, model, provider and status.",
    ["route", "model", "provider", "status"],
    registry=REGISTRY,
)
tokens_total = Counter(
    "gateway_tokens_total",
    "Tokens by type (input includes cached_input, output includes reasoning).",
    ["model", "provider", "type"],
    registry=REGISTRY,
)
cost_usd_total = Counter(
    "gateway_cost_usd_total",
    "Spend in USD computed from the registry's prices.",
    ["model", "provider"],
    registry=REGISTRY,
)
# Calls the upstream never reported usage for (the client left, the stream broke), billed
# from the gateway's own count: their cost is in gateway_cost_usd_total too, this says how much.
estimated_calls_total = Counter(
    "gateway_estimated_calls_total",
    "Calls billed from the gateway's token estimate because the upstream never reported their usage.",
    ["model", "provider"],
    registry=REGISTRY,
)
estimated_cost_usd_total = Counter(
    "gateway_estimated_cost_usd_total",
    "The part of gateway_cost_usd_total billed from estimates (gateway_estimated_calls_total).",
    ["model", "provider"],
    registry=REGISTRY,
)
request_duration_seconds = Histogram(
    "gateway_request_duration_seconds",
    "Time from request to last byte.",
    _ROUTED,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
time_to_first_token_seconds = Histogram(
    "gateway_time_to_first_token_seconds",
    "Time from request to the first streamed token.",
    _ROUTED,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
overhead_seconds = Histogram(
    "gateway_overhead_seconds",
    "Time spent in the gateway itself: the whole call minus the waits on the upstream and on the client.",
    _ROUTED,
    buckets=OVERHEAD_BUCKETS,
    registry=REGISTRY,
)
upstream_errors_total = Counter(
    "gateway_upstream_errors_total",
    "Upstream failures by reason.",
    ["model", "provider", "reason"],
    registry=REGISTRY,
)
# livesum: the requests in flight now in the live workers; a dead worker's are not.
in_flight_requests = Gauge(
    "gateway_in_flight_requests",
    "Requests being served now.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
# mostrecent: every worker reloads the same folder; the latest value is the live registry's
# (max would keep a shrunk registry's old size forever).
registry_models = Gauge(
    "gateway_registry_models",
    "Models in the live registry.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
registry_reloads_total = Counter(
    "gateway_registry_reloads_total",
    "Registry reloads by result (counted by each worker process).",
    ["result"],
    registry=REGISTRY,
)
# Refusals at one of the gateway's own limits (gateway.capacity): never an upstream error.
local_limit_total = Counter(
    "gateway_local_limit_total",
    "Calls answered 503 gateway_overloaded, by the local limit reached.",
    ["limit"],
    registry=REGISTRY,
)
unpriced_requests_total = Counter(
    "gateway_unpriced_requests_total",
    "Calls to a model the registry has no price for.",
    ["model"],
    registry=REGISTRY,
)
genai_token_usage = Histogram(
    "gen_ai_client_token_usage",
    "OpenTelemetry gen_ai.client.token.usage: input and output tokens per call.",
    [*_GENAI, "gen_ai_token_type"],
    buckets=GENAI_TOKEN_BUCKETS,
    registry=REGISTRY,
)
genai_operation_duration_seconds = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "OpenTelemetry gen_ai.client.operation.duration: the whole call; error_type is empty on success.",
    [*_GENAI, "error_type"],
    buckets=GENAI_DURATION_BUCKETS,
    registry=REGISTRY,
)
genai_time_to_first_token_seconds = Histogram(
    "gen_ai_server_time_to_first_token_seconds",
    "OpenTelemetry gen_ai.server.time_to_first_token: successful streamed calls.",
    _GENAI,
    buckets=GENAI_TTFT_BUCKETS,
    registry=REGISTRY,
)

# Both results exist from the start, so increase() sees the first refused reload.
registry_reloads_total.labels("ok")
registry_reloads_total.labels("error")
for _limit in ("provider_pool", "deployment_pool", "client_connections", "descriptors"):
    local_limit_total.labels(_limit)


def genai_labels(model: Model) -> tuple[str, str, str]:
    """(gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model) for a model.

    The provider is the convention's well-known `gcp.gemini` for the Gemini API
    (generativelanguage.googleapis.com); an OpenAI-kind provider can be any
    OpenAI-compatible server, so it keeps its registry name (`openai` for OpenAI's own).
    The model is the provider-native id the gateway asked for, as the convention says.
    """
    operation = "embeddings" if model.is_embedding else "chat"
    return operation, model.wire.genai_provider or model.provider_name, bare_model(model.native_id)


# prometheus-client chose its value store from PROMETHEUS_MULTIPROC_DIR when imported: in
# one process (True) a metric's values are plain in-memory ones, which a collector can
# read at the scrape; with workers they are files every worker's scrape reads.
IN_PROCESS = values.ValueClass is values.MutexValue


class FastHistogram:
    """A labelled histogram child's values, observed without prometheus-client's per-call
    checks and its Python loop over the buckets: bisect finds the bucket (`amount <= bound`,
    as the library's loop does). Each value's own inc() still does the locking and, in
    multiprocess mode, the file write. tests/unit/test_metrics_fast.py holds it to the
    library's own observe()."""

    __slots__ = ("_bounds", "_buckets", "_sum")

    def __init__(self, child: Any) -> None:
        self._bounds: list[float] = list(child._upper_bounds)
        self._buckets: list[Any] = child._buckets
        self._sum: Any = child._sum

    def observe(self, amount: float) -> None:
        self._sum.inc(amount)
        self._buckets[bisect_left(self._bounds, amount)].inc(1)


class FastValue:
    """A counter's or gauge's value (a labelled child, or a metric without labels), moved
    without the library's per-call checks (a counter's amounts here are never negative)."""

    __slots__ = ("_value",)

    def __init__(self, child: Any) -> None:
        self._value: Any = child._value

    def inc(self, amount: float = 1) -> None:
        self._value.inc(amount)

    def dec(self) -> None:
        self._value.inc(-1)


in_flight = FastValue(in_flight_requests)  # the Exchange's count of calls under way


@dataclass(slots=True)
class _CallSeries:
    """The labelled children one (route, model) records into, looked up once: labels()
    costs a lock and a validation per call, a dict lookup here does not."""

    requests: dict[int, FastValue]  # by status
    duration: FastHistogram
    overhead: FastHistogram
    ttft: FastHistogram
    genai: tuple[str, str, str]
    genai_duration: FastHistogram  # the success series; an error's is looked up by its reason
    genai_ttft: FastHistogram


@dataclass(slots=True)
class _UsageSeries:
    tokens: tuple[
        FastValue, FastValue, FastValue, FastValue
    ]  # input, cached_input, output, reasoning
    cost: FastValue
    unpriced: FastValue
    genai_input: FastHistogram
    genai_output: FastHistogram | None  # None for embeddings: no output tokens to report


# Keyed by everything the labels come from, so a reload that changes a model's provider
# or native id gets new children. Bounded like the series themselves (registry keys).
_calls: dict[tuple[str, str, str, str, str, str], _CallSeries] = {}
_warned_unpriced: set[str] = set()
_usages: dict[tuple[str, str, str, str, str], _UsageSeries] = {}


def _model_id(model: Model) -> tuple[str, str, str, str, str]:
    return (model.key, model.provider_name, model.wire.name, model.endpoint, model.native_id)


def _call_series(route: str, model: Model) -> _CallSeries:
    cache_key = (route, *_model_id(model))
    series = _calls.get(cache_key)
    if series is None:
        key, provider = model.key, model.provider_name
        genai = genai_labels(model)
        series = _CallSeries(
            {},
            FastHistogram(request_duration_seconds.labels(route, key, provider)),
            FastHistogram(overhead_seconds.labels(route, key, provider)),
            FastHistogram(time_to_first_token_seconds.labels(route, key, provider)),
            genai,
            FastHistogram(genai_operation_duration_seconds.labels(*genai, "")),
            FastHistogram(genai_time_to_first_token_seconds.labels(*genai)),
        )
        _calls[cache_key] = series
    return series


def _usage_series(model: Model) -> _UsageSeries:
    cache_key = _model_id(model)
    series = _usages.get(cache_key)
    if series is None:
        key, provider = model.key, model.provider_name
        genai = genai_labels(model)
        series = _UsageSeries(
            tuple(
                FastValue(tokens_total.labels(key, provider, kind))  # type: ignore[arg-type]
                for kind in ("input", "cached_input", "output", "reasoning")
            ),
            FastValue(cost_usd_total.labels(key, provider)),
            FastValue(unpriced_requests_total.labels(key)),
            FastHistogram(genai_token_usage.labels(*genai, "input")),
            None
            if model.is_embedding
            else FastHistogram(genai_token_usage.labels(*genai, "output")),
        )
        _usages[cache_key] = series
    return series


def record(call: CallRecord) -> None:
    """The metrics sink: one finished call (gateway.proxy.exchange calls every sink)."""
    model = call.served
    if model is None:  # refused before a model was resolved: never labelled with the name asked
        requests_total.labels(call.route, "", "", str(call.status)).inc()
        return
    _record_call(call, model)
    for failure in call.failures:
        upstream_errors_total.labels(failure.model, failure.provider, failure.reason).inc()
    for handover in call.handovers:
        fallbacks_total.labels(handover.model, handover.fallback, handover.reason).inc()
    if call.usage is not None:
        _record_usage(model, call.usage, call.cost)
        if call.estimated:  # rare (hang-ups, broken streams): no cached children needed
            estimated_calls_total.labels(model.key, model.provider_name).inc()
            if call.cost is not None:
                estimated_cost_usd_total.labels(model.key, model.provider_name).inc(
                    float(call.cost)
                )
        if call.cost is None and model.key not in _warned_unpriced:
            _warned_unpriced.add(model.key)
            log.warning(
                "model %s has no price in the registry: its spend is not counted", model.key
            )


def _record_call(call: CallRecord, model: Model) -> None:
    series = _call_series(call.route, model)
    status = call.status
    counter = series.requests.get(status)
    if counter is None:
        counter = series.requests[status] = FastValue(
            requests_total.labels(call.route, model.key, model.provider_name, str(status))
        )
    counter.inc()
    duration, ttft, error_reason = call.duration_s, call.ttft_s, call.error_reason
    series.duration.observe(duration)
    series.overhead.observe(call.overhead_s)
    if error_reason is None:
        series.genai_duration.observe(duration)
    else:
        genai_operation_duration_seconds.labels(*series.genai, error_reason).observe(duration)
    if ttft is not None:
        series.ttft.observe(ttft)
        if error_reason is None:
            series.genai_ttft.observe(ttft)


def _record_usage(model: Model, usage: Usage, cost: Decimal | None) -> None:
    series = _usage_series(model)
    for child, count in zip(
        series.tokens, (usage.input, usage.cached_input, usage.output, usage.reasoning), strict=True
    ):
        if count:
            child.inc(count)
    if cost is not None:
        series.cost.inc(float(cost))  # the Prometheus boundary: exact up to here
    else:
        series.unpriced.inc()
    series.genai_input.observe(usage.input)
    if series.genai_output is not None:
        series.genai_output.observe(usage.output)


def render_metrics() -> bytes:
    """The text exposition: this process's registry, or all workers' files in multiprocess mode."""
    return generate_latest(multiprocess.collector_registry() or REGISTRY)


# Reliability (gateway.upstream.breaker, gateway.proxy.handler): each worker has its own breakers.
deployment_state = Gauge(
    "gateway_deployment_state",
    "Circuit breaker of a model's deployment: 0 closed, 1 open, 2 half-open.",
    ["model", "deployment"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
fallbacks_total = Counter(
    "gateway_fallbacks_total",
    "Requests handed from a model to its fallback.",
    ["model", "fallback", "reason"],
    registry=REGISTRY,
)
