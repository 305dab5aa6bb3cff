"""A key's own limits as the counters hold them now, for GET /v1/key."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gateway.admission.answers import duration
from gateway.admission.stage import quota_of
from gateway.counters.base import CountersUnavailable
from gateway.counters.limits import usd_text
from gateway.counters.periods import period_end
from gateway.store.records import iso


async def counters_view(admission: Any, principal: Any) -> dict[str, Any]:
    quota = quota_of(principal)
    if quota is None or admission is None:
        return {"budgets": [], "rate_limits": []}
    now = time.time()
    lines = quota.lines(datetime.fromtimestamp(now, UTC).replace(tzinfo=None))
    try:
        budgets, rates = await admission.read(lines.budgets, lines.rates, now)
    except CountersUnavailable:
        return {"budgets": [], "rate_limits": [], "counters": "unavailable"}
    return {
        "budgets": [
            {
                "scope": line.label.kind,
                "name": line.label.name,
                "period": line.period,
                "amount_usd": usd_text(line.limit),
                "period_start": iso(line.start),
                "resets_at": iso(period_end(line.period, line.start)),
                "spent_usd": usd_text(spent),
                "reserved_usd": usd_text(reserved),
                "remaining_usd": usd_text(max(0, line.limit - spent - reserved)),
            }
            for line, (spent, reserved) in zip(lines.budgets, budgets, strict=True)
        ],
        "rate_limits": [
            {
                "scope": line.label.kind,
                "name": line.label.name,
                "kind": line.kind,
                "limit_per_minute": line.limit,
                "remaining": max(0, line.limit - used),
                "reset": duration(reset),
            }
            for line, (used, reset) in zip(lines.rates, rates, strict=True)
        ],
    }
