"""Per-key counters in one process (gateway.keys.metrics): plain totals turned into
counters at each scrape must give what prometheus-client's own counters give, sample
for sample, current right after a call, with the spend summed exactly."""

from __future__ import annotations

import gc
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.accounting import CallRecord, Usage
from gateway.auth.principal import ANONYMOUS, MASTER, Principal
from gateway.keys import metrics as key_metrics
from gateway.keys.ledger import LedgerWriter
from gateway.metrics import IN_PROCESS, REGISTRY, render_metrics
from gateway.store import Store

pytestmark = pytest.mark.skipif(
    not IN_PROCESS, reason="multiprocess mode: tests/e2e/test_keys_processes.py"
)


def _call(principal: Principal, status: int, usage: Usage | None, cost: str | None) -> CallRecord:
    return CallRecord(
        request_id="r",
        time=1_796_000_000.0,
        principal=principal,
        route="/v1/chat/completions",
        client_api="chat",
        model="openai:gpt-4o-mini",
        provider="openai",
        answered_by="openai:gpt-4o-mini",
        status=status,
        usage=usage,
        cost=None if cost is None else Decimal(cost),
        duration_s=0.01,
        overhead_s=0.001,
        ttft_s=None,
        streamed=False,
        disconnected=False,
        error_reason=None,
        estimated=False,
    )


def _samples(text: str, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith(prefix) and not sample.name.endswith("_created")
    }


def test_the_scrape_gives_what_the_library_counters_give() -> None:
    alpha = Principal("key", "key_t1", "metrics-alpha", None, None, None, None)
    beta = Principal("key", "key_t2", "metrics-beta", "team_t", "metrics-team", None, None)
    calls = [
        _call(alpha, 200, Usage(1200, 200, 300, 100), "0.000345"),
        _call(alpha, 200, Usage(10, 0, 5, 0), "0.0000402"),
        _call(alpha, 429, None, None),  # refused: a request, no tokens, no cost
        _call(beta, 502, Usage(7, 0, 0, 0), None),  # unpriced: tokens, no cost
        _call(MASTER, 200, Usage(7, 0, 3, 0), "1"),  # the master key: not a key's
    ]
    reference = CollectorRegistry()
    cost = Counter("metrics_key_cost_usd_total", "", ["key", "team"], registry=reference)
    tokens = Counter("metrics_key_tokens_total", "", ["key", "team", "type"], registry=reference)
    requests = Counter(
        "metrics_key_requests_total", "", ["key", "team", "status"], registry=reference
    )
    for call in calls:
        key_metrics.record(call)
        principal = call.principal
        if principal.kind != "key":
            continue
        labels = (principal.key_name or "", principal.team_name or "")
        requests.labels(*labels, str(call.status)).inc()
        child = cost.labels(*labels)  # made at a key's first call, as ours are
        kinds = ("input", "cached_input", "output", "reasoning")
        counts = (
            (0, 0, 0, 0)
            if call.usage is None
            else (
                call.usage.input,
                call.usage.cached_input,
                call.usage.output,
                call.usage.reasoning,
            )
        )
        for kind, count in zip(kinds, counts, strict=True):
            tokens.labels(*labels, kind).inc(count)
        if call.cost is not None:
            child.inc(float(call.cost))
    theirs = {
        (name.replace("metrics_key_", "gateway_key_"), labels): value
        for (name, labels), value in _samples(
            generate_latest(reference).decode(), "metrics_key_"
        ).items()
    }
    ours = {
        key: value
        for key, value in _samples(render_metrics().decode(), "gateway_key_").items()
        if dict(key[1])["key"].startswith("metrics-")
    }
    assert ours == theirs
    assert (
        ours[
            (
                "gateway_key_requests_total",
                (("key", "metrics-alpha"), ("status", "429"), ("team", "")),
            )
        ]
        == 1
    )


def test_the_spend_is_summed_exactly_and_current_at_once() -> None:
    exact = Principal("key", "key_t3", "metrics-exact", None, None, None, None)
    for _ in range(10):
        key_metrics.record(_call(exact, 200, Usage(1, 0, 1, 0), "0.1"))
    value = REGISTRY.get_sample_value(
        "gateway_key_cost_usd_total", {"key": "metrics-exact", "team": ""}
    )
    assert value == 1.0  # ten float additions of 0.1 give 0.9999999999999999
    key_metrics.record(_call(exact, 200, Usage(1, 0, 1, 0), "0.000000000001"))
    value = REGISTRY.get_sample_value(
        "gateway_key_cost_usd_total", {"key": "metrics-exact", "team": ""}
    )
    assert value == float(Decimal("1.000000000001"))


def test_the_names_are_taken_in_the_registry() -> None:
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("gateway_key_requests_total", "again", ["key"], registry=REGISTRY)


def test_the_queued_rows_gauge_is_the_live_queues(tmp_path: Path) -> None:
    """gateway_ledger_queued_rows is read from the writers' queues at the scrape: the calls
    not yet written, none once a flush wrote them, none for a writer that is gone."""
    store = Store.open(f"sqlite:///{tmp_path / 'gateway.db'}")
    try:
        before = REGISTRY.get_sample_value("gateway_ledger_queued_rows") or 0.0
        writer = LedgerWriter(store)
        writer.enabled = True
        key = Principal("key", "key_t4", "metrics-queue", None, None, None, None)
        for _ in range(3):
            writer(_call(key, 200, Usage(1, 0, 1, 0), "0.1"))
        writer(_call(ANONYMOUS, 200, Usage(1, 0, 1, 0), "0.1"))  # no key: not a ledger row
        assert REGISTRY.get_sample_value("gateway_ledger_queued_rows") == before + 3
        assert writer.flush() == 3
        assert REGISTRY.get_sample_value("gateway_ledger_queued_rows") == before
        writer(_call(MASTER, 200, Usage(1, 0, 1, 0), "0.1"))
        assert REGISTRY.get_sample_value("gateway_ledger_queued_rows") == before + 1
        del writer
        gc.collect()
        assert REGISTRY.get_sample_value("gateway_ledger_queued_rows") == before
    finally:
        store.close()
