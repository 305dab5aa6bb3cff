"""Which counters a gateway uses: Redis/Valkey with GATEWAY_REDIS_URL, else the store's
database. Built when virtual keys come into force (gateway.keys.runtime)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.admission.quota import Quota
from gateway.admission.runtime import Admission
from gateway.counters.base import Counters
from gateway.counters.plan import BudgetLine
from gateway.counters.reconcile import ledger_spend
from gateway.counters.sql import SqlCounters
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.keys.cache import KeyCache
    from gateway.keys.ledger import LedgerWriter
    from gateway.store import Store


def budget_lines(cache: KeyCache) -> list[BudgetLine]:
    """Every budget line in force now, over every key and team the cache holds."""
    now = datetime.now(UTC).replace(tzinfo=None)
    out: dict[str, BudgetLine] = {}
    for principal in cache.principals():
        quota = getattr(principal.limits, "quota", None)
        if isinstance(quota, Quota):
            for line in quota.lines(now).budgets:
                out[line.key] = line
    return list(out.values())


def build(
    settings: Settings, store: Store, cache: KeyCache, writer: LedgerWriter | None
) -> Admission:
    primary: Counters
    if settings.redis_url:
        from gateway.counters.redis_backend import RedisCounters

        primary = RedisCounters(settings.redis_url)
    else:
        primary = SqlCounters(store)
    return Admission(
        primary,
        settings.redis_failure,
        flush_ledger=writer.flush if writer is not None else None,
        budget_lines=lambda: budget_lines(cache),
        ledger_spend=lambda lines: ledger_spend(store, lines),
        shares=os.environ.get("GATEWAY_COUNTER_SHARES", "on").strip().lower() != "off",
    )
