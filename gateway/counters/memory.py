"""Counters in this process's memory: the Redis backend's stand-in while Redis is away
and the deployment chose GATEWAY_REDIS_FAILURE=open (each replica then holds the limits
alone). Single event loop, no awaits inside a decision: atomic by construction."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.counters.logic import bucket, decide, reset_s
from gateway.counters.plan import BUCKETS, Ask, BudgetLine, Outcome, RateLine, Settlement


class MemoryCounters:
    kind = "memory"

    def __init__(self) -> None:
        self.budgets: dict[str, list[int]] = {}  # key -> [spent, reserved]
        self.windows: dict[tuple[str, int], int] = {}  # (rate key, bucket) -> count
        self.slots: dict[str, dict[str, float]] = {}  # scope -> rid -> lease end
        self.leases: dict[str, tuple[float, int, tuple[str, ...], tuple[str, ...]]] = {}

    def seed(self, key: str, spent: int) -> None:
        """Start a budget from a known spend (the last the shared counters reported)."""
        self.budgets.setdefault(key, [spent, 0])

    def _window(self, key: str, now: float) -> list[int]:
        cur = bucket(now)
        return [self.windows.get((key, b), 0) for b in range(cur - BUCKETS + 1, cur + 1)]

    async def admit(self, ask: Ask) -> Outcome:
        budgets = [tuple(self.budgets.get(line.key, (0, 0))) for line in ask.budgets]
        windows = [self._window(line.key, ask.now) for line in ask.rates]
        busy = []
        for slot in ask.slots:
            held = self.slots.setdefault(slot.scope, {})
            for rid in [rid for rid, until in held.items() if until <= ask.now]:
                del held[rid]
            busy.append(len(held))
        outcome = decide(ask, budgets, windows, busy)  # type: ignore[arg-type]
        if not outcome.ok:
            return outcome
        for budget in ask.budgets:
            self.budgets.setdefault(budget.key, [0, 0])[1] += outcome.cost
        cur = bucket(ask.now)
        for rate in ask.rates:
            amount = ask.count if rate.kind == "requests" else outcome.tokens
            self.windows[(rate.key, cur)] = self.windows.get((rate.key, cur), 0) + amount
        for slot in ask.slots:
            self.slots[slot.scope][ask.rid] = ask.now + ask.lease_s
        self.leases[ask.rid] = (
            ask.now + ask.lease_s,
            outcome.cost,
            tuple(b.key for b in ask.budgets),
            tuple(s.scope for s in ask.slots),
        )
        self._trim(ask.now)
        return outcome

    def _trim(self, now: float) -> None:
        oldest = bucket(now) - BUCKETS
        if len(self.windows) > 4096:
            for key in [key for key in self.windows if key[1] <= oldest]:
                del self.windows[key]

    def _release(self, rid: str) -> bool:
        lease = self.leases.pop(rid, None)
        if lease is None:
            return False
        _until, cost, budget_keys, scopes = lease
        for key in budget_keys:
            self.budgets.setdefault(key, [0, 0])[1] -= cost
        for scope in scopes:
            self.slots.get(scope, {}).pop(rid, None)
        return True

    async def settle(self, settlement: Settlement) -> list[tuple[int, int]]:
        lease = self.leases.get(settlement.rid)
        self._release(settlement.rid)
        if settlement.keep and lease is not None:
            self.leases[settlement.rid] = (lease[0], settlement.keep, lease[2], ())
            for budget_key in lease[2]:
                self.budgets.setdefault(budget_key, [0, 0])[1] += settlement.keep
        for budget in settlement.budgets:
            self.budgets.setdefault(budget.key, [0, 0])[0] += settlement.actual_pusd
        delta = settlement.actual_tokens - settlement.tokens
        if delta:
            admitted, cur = bucket(settlement.admitted_at), bucket(settlement.now)
            for rate in settlement.token_rates:
                key = (rate.key, admitted) if admitted > cur - BUCKETS else (rate.key, cur)
                if key[1] == admitted or delta > 0:
                    self.windows[key] = self.windows.get(key, 0) + delta
        return [(v[0], v[1]) for v in (self.budgets[line.key] for line in settlement.budgets)]

    async def read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        spent = [(v[0], v[1]) for v in (self.budgets.get(line.key, [0, 0]) for line in budgets)]
        windows = [self._window(rate.key, now) for rate in rates]
        return spent, [(sum(w), reset_s(now, w)) for w in windows]

    async def renew(self, rids: Sequence[str], until: float) -> int:
        renewed = 0
        for rid in rids:
            lease = self.leases.get(rid)
            if lease is not None:
                self.leases[rid] = (until, *lease[1:])
                for scope in lease[3]:
                    if rid in self.slots.get(scope, {}):
                        self.slots[scope][rid] = until
                renewed += 1
        return renewed

    async def ping(self) -> None:
        return None

    async def sweep(self, now: float) -> int:
        expired = [rid for rid, lease in self.leases.items() if lease[0] <= now]
        for rid in expired:
            self._release(rid)
        return len(expired)

    async def close(self) -> None:
        return None
