"""Prometheus counters per virtual key and team, beside the per-model ones.

Labels are the names the operator gave the key and its team (`team` empty for a key
without one), so cardinality is bounded by the keys an operator creates; never a
secret or its hash. Calls with the master key have no key and are not counted here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter

from gateway.metrics import REGISTRY, FastValue

if TYPE_CHECKING:
    from gateway.accounting import CallRecord

key_cost_usd_total = Counter(
    "gateway_key_cost_usd_total",
    "Spend in USD by virtual key and team.",
    ["key", "team"],
    registry=REGISTRY,
)
key_tokens_total = Counter(
    "gateway_key_tokens_total",
    "Tokens by virtual key, team and type (input includes cached_input, output includes reasoning).",
    ["key", "team", "type"],
    registry=REGISTRY,
)
key_requests_total = Counter(
    "gateway_key_requests_total",
    "Requests by virtual key, team and status.",
    ["key", "team", "status"],
    registry=REGISTRY,
)

_TYPES = ("input", "cached_input", "output", "reasoning")
# The children for one (key, team), looked up once: labels() takes a lock per call, and
# inc() checks the metric's type and the amount's sign each time (these never go down).
_series: dict[tuple[str, str], tuple[FastValue, tuple[FastValue, ...], dict[int, FastValue]]] = {}


def record(record: CallRecord) -> None:
    principal = record.principal
    if principal.kind != "key" or principal.key_name is None:
        return
    labels = (principal.key_name, principal.team_name or "")
    series = _series.get(labels)
    if series is None:
        series = _series[labels] = (
            FastValue(key_cost_usd_total.labels(*labels)),
            tuple(FastValue(key_tokens_total.labels(*labels, kind)) for kind in _TYPES),
            {},
        )
    cost, tokens, requests = series
    counter = requests.get(record.status)
    if counter is None:
        counter = requests[record.status] = FastValue(
            key_requests_total.labels(*labels, str(record.status))
        )
    counter.inc()
    usage = record.usage
    if usage is not None:
        for child, count in zip(
            tokens, (usage.input, usage.cached_input, usage.output, usage.reasoning), strict=True
        ):
            if count:
                child.inc(count)
    if record.cost is not None:
        cost.inc(float(record.cost))
