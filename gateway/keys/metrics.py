"""Prometheus counters per virtual key and team, beside the per-model ones.

Labels are the names the operator gave the key and its team (`team` empty for a key
without one), so cardinality is bounded by the keys an operator creates; never a
secret or its hash. Calls with the master key have no key and are not counted here.

In one process (the default) a call adds to plain Python numbers, and a collector
turns them into the three counters when /metrics is rendered: exact and current at
every scrape, with no lock and no prometheus-client call per call (four locked
increments cost ~16k instructions a call). The spend is summed as exact Decimals and
turned into a float once, at the scrape. In multiprocess mode (`--workers N`) a scrape
must see every worker's values, which only prometheus-client's files give: there each
call moves the library's counters at once, as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gateway.metrics import IN_PROCESS, REGISTRY, FastValue

if TYPE_CHECKING:
    from gateway.accounting import CallRecord

COST = ("gateway_key_cost_usd", "Spend in USD by virtual key and team.")
TOKENS = (
    "gateway_key_tokens",
    "Tokens by virtual key, team and type (input includes cached_input, output includes reasoning).",
)
REQUESTS = ("gateway_key_requests", "Requests by virtual key, team and status.")
_TYPES = ("input", "cached_input", "output", "reasoning")


class _Series:
    """One (key, team)'s totals, as the library's children for it would hold them."""

    __slots__ = ("cost", "created", "requests", "tokens")

    def __init__(self) -> None:
        self.created = time.time()  # the cost and token series start at the first call
        self.cost = Decimal(0)
        self.tokens = [0, 0, 0, 0]  # in _TYPES order
        self.requests: dict[int, list[float]] = {}  # status -> [count, created]


_totals: dict[tuple[str, str], _Series] = {}


def _record_in_process(record: CallRecord) -> None:
    principal = record.principal
    if principal.kind != "key" or principal.key_name is None:
        return
    labels = (principal.key_name, principal.team_name or "")
    series = _totals.get(labels)
    if series is None:
        series = _totals[labels] = _Series()
    counted = series.requests.get(record.status)
    if counted is None:
        series.requests[record.status] = [1, time.time()]
    else:
        counted[0] += 1
    usage = record.usage
    if usage is not None:
        tokens = series.tokens
        tokens[0] += usage.input
        tokens[1] += usage.cached_input
        tokens[2] += usage.output
        tokens[3] += usage.reasoning
    if record.cost is not None:
        series.cost += record.cost


class _KeyCollector(Collector):
    """The three counters from _totals, at each scrape (on the event loop, as the calls)."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        cost = CounterMetricFamily(*COST, labels=("key", "team"))
        tokens = CounterMetricFamily(*TOKENS, labels=("key", "team", "type"))
        requests = CounterMetricFamily(*REQUESTS, labels=("key", "team", "status"))
        for labels, series in list(_totals.items()):
            cost.add_metric(labels, float(series.cost), created=series.created)
            for kind, count in zip(_TYPES, series.tokens, strict=True):
                tokens.add_metric((*labels, kind), count, created=series.created)
            for status, (calls, created) in list(series.requests.items()):
                requests.add_metric((*labels, str(status)), calls, created=created)
        yield from (cost, tokens, requests)

    def describe(self) -> Iterator[CounterMetricFamily]:
        # The names, so the registry refuses another metric by one of them.
        yield CounterMetricFamily(*COST, labels=("key", "team"))
        yield CounterMetricFamily(*TOKENS, labels=("key", "team", "type"))
        yield CounterMetricFamily(*REQUESTS, labels=("key", "team", "status"))


# Multiprocess mode: the library's counters, each child's value looked up once (labels()
# takes a lock per call, and inc() checks the metric's type and the amount's sign).
_series: dict[tuple[str, str], tuple[FastValue, tuple[FastValue, ...], dict[int, FastValue]]] = {}


def _record_to_files(record: CallRecord) -> None:
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


if IN_PROCESS:
    REGISTRY.register(_KeyCollector())
    record = _record_in_process
else:
    key_cost_usd_total = Counter(f"{COST[0]}_total", COST[1], ["key", "team"], registry=REGISTRY)
    key_tokens_total = Counter(
        f"{TOKENS[0]}_total", TOKENS[1], ["key", "team", "type"], registry=REGISTRY
    )
    key_requests_total = Counter(
        f"{REQUESTS[0]}_total", REQUESTS[1], ["key", "team", "status"], registry=REGISTRY
    )
    record = _record_to_files
