"""The shared counters' values as one process knows them, its shares accounted for
(gateway.counters.shares): what `GET /v1/key`, the budget gauges and the headers show."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.counters.logic import bucket
from gateway.counters.plan import BUCKETS, BudgetLine, RateLine
from gateway.counters.share_state import Line


def view(share: Line) -> tuple[int, int]:
    """(spent, reserved) of a budget line as this process knows them, from what the
    counters said last."""
    return _with_slices(share, *share.seen)


def _with_slices(share: Line | None, spent: int, reserved: int) -> tuple[int, int]:
    """A budget line's (spent, reserved) as read, with this process's slices of it: their
    settled spend added, their unused part not counted as reserved."""
    for s in share.slices if share is not None else ():
        spent += s.spent
        reserved += s.used - s.spent - s.size
    return spent, max(0, reserved)


def adjust(
    budget_shares: dict[str, Line],
    rate_shares: dict[str, Line],
    budgets: Sequence[BudgetLine],
    rates: Sequence[RateLine],
    values: tuple[list[tuple[int, int]], list[tuple[int, float]]],
    now: float,
) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
    """A read of the shared counters as this process knows them: its shares' unused
    parts are not counted as reserved or used, their settled spend is counted."""
    spent_reserved, used_reset = values
    out_b = [
        _with_slices(budget_shares.get(line.key), spent, reserved)
        for line, (spent, reserved) in zip(budgets, spent_reserved, strict=True)
    ]
    out_r = []
    oldest = bucket(now) - BUCKETS
    for rline, (used, reset) in zip(rates, used_reset, strict=True):
        rshare = rate_shares.get(rline.key)
        for s in rshare.slices if rshare is not None else ():
            if s.bucket > oldest:  # still in the window read
                used -= max(0, s.size - s.used)
        out_r.append((max(0, used), reset))
    return out_b, out_r
