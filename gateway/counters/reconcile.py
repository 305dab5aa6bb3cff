"""The ledger's word on a budget: what its scope spent since its period began. Used to
rebuild Redis's counters when Redis comes back empty."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from gateway.counters.plan import BudgetLine
from gateway.store import Store
from gateway.store.schema import ledger


def ledger_spend(store: Store, lines: Sequence[BudgetLine]) -> list[int]:
    """Pico-USD in the ledger for each line's key or team since its period's start."""
    out = []
    with store.begin() as connection:
        for line in lines:
            kind, _, scope_id = line.scope.partition(":")
            column = ledger.c.key_id if kind == "k" else ledger.c.team_id
            total = connection.execute(
                select(func.coalesce(func.sum(ledger.c.cost_pusd), 0)).where(
                    column == scope_id, ledger.c.time >= line.start
                )
            ).scalar_one()
            out.append(int(total))
    return out
