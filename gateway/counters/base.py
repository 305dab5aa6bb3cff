"""The counters' one interface. Every backend admits atomically (all of a call's budget
reservations, rate windows and concurrency slots, or none of them) and settles once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.counters.plan import Ask, BudgetLine, Outcome, RateLine, Settlement


class CountersUnavailable(Exception):
    """The shared counters did not answer (Redis down, or not yet rebuilt after a restart)."""


class Counters(Protocol):
    kind: str  # "sql" | "redis" | "memory"

    async def admit(self, ask: Ask) -> Outcome:
        """Reserve, or refuse; raises CountersUnavailable."""
        ...

    async def settle(self, settlement: Settlement) -> list[tuple[int, int]]:
        """Replace the reservation by the actual cost: (spent, reserved) per budget line
        after it; raises CountersUnavailable."""
        ...

    async def read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        """(spent, reserved) per budget line and (used, reset seconds) per rate line."""
        ...

    async def renew(self, rids: Sequence[str], until: float) -> int:
        """Move the lease of these reservations (and their concurrency slots) to `until`:
        how many were still held."""
        ...

    async def ping(self) -> None:
        """Raise CountersUnavailable unless the counters answer."""
        ...

    async def sweep(self, now: float) -> int:
        """Release reservations whose lease ran out (their process died): how many."""
        ...

    async def close(self) -> None: ...
