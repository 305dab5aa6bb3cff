"""Many admissions and settlements applied in one SQL transaction (gateway.counters.sql):
the counters they touch are read once, each operation is decided in turn on the values
as the previous ones left them (gateway.counters.logic.decide, exactly as one
transaction per call would), and the changes are written once, as deltas.

Pure: no database here. The SQL backend loads what `needs` names, runs the operations
and writes what the batch collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.counters.logic import bucket, decide
from gateway.counters.plan import BUCKETS, Ask, BudgetLine, Outcome, Settlement


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation row this batch claimed (deleted) to release it."""

    until: float
    cost: int
    budget_keys: tuple[str, ...]
    slot_scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Needs:
    """What a batch must read before it runs."""

    rids: tuple[str, ...]  # reservations to claim (settlements)
    budget_keys: tuple[str, ...]  # besides those of claimed reservations
    rate_keys: tuple[str, ...]
    slot_scopes: tuple[str, ...]
    oldest_bucket: int  # rate buckets newer than this are read
    now: float  # concurrency slots held past this are counted


def needs(ops: Sequence[Ask | Settlement]) -> Needs:
    budget_keys: dict[str, None] = {}
    rate_keys: dict[str, None] = {}
    slot_scopes: dict[str, None] = {}
    rids = []
    for op in ops:
        for line in op.budgets:
            budget_keys[line.key] = None
        if isinstance(op, Ask):
            for rate in op.rates:
                rate_keys[rate.key] = None
            for slot in op.slots:
                slot_scopes[slot.scope] = None
        else:
            rids.append(op.rid)
            for rate in op.token_rates:
                rate_keys[rate.key] = None
    now = min(op.now for op in ops)
    return Needs(
        tuple(rids),
        tuple(budget_keys),
        tuple(rate_keys),
        tuple(slot_scopes),
        bucket(now) - BUCKETS,
        now,
    )


@dataclass
class Batch:
    budgets: dict[str, list[int]]  # key -> [spent, reserved], as read
    windows: dict[tuple[str, int], int]  # (rate key, bucket) -> amount, as read
    busy: dict[str, int]  # slot scope -> calls in flight, as read
    held: dict[str, Held]  # claimed reservations by rid
    counted_after: float  # `busy` counts slots held past this

    # What to write, collected while the operations run:
    budget_delta: dict[str, list[int]] = field(default_factory=dict)  # key -> [spent, reserved]
    lines: dict[str, BudgetLine] = field(default_factory=dict)  # to create missing rows
    window_delta: dict[tuple[str, int], int] = field(default_factory=dict)
    new_slots: list[tuple[str, str, float]] = field(default_factory=list)  # scope, rid, until
    gone_slots: list[tuple[str, str]] = field(default_factory=list)  # scope, rid
    new_reservations: list[tuple[str, float, int, list[str], list[str]]] = field(
        default_factory=list
    )
    old_buckets: dict[str, int] = field(default_factory=dict)  # rate key -> drop buckets <= this

    def _budget(self, key: str, spent: int, reserved: int) -> None:
        value = self.budgets.setdefault(key, [0, 0])
        value[0] += spent
        value[1] += reserved
        delta = self.budget_delta.setdefault(key, [0, 0])
        delta[0] += spent
        delta[1] += reserved

    def _window(self, key: str, at: int, amount: int) -> None:
        self.windows[(key, at)] = self.windows.get((key, at), 0) + amount
        self.window_delta[(key, at)] = self.window_delta.get((key, at), 0) + amount

    def admit(self, ask: Ask) -> Outcome:
        cur = bucket(ask.now)
        outcome = decide(
            ask,
            [(v[0], v[1]) for v in (self.budgets.get(line.key, (0, 0)) for line in ask.budgets)],
            [
                [self.windows.get((line.key, b), 0) for b in range(cur - BUCKETS + 1, cur + 1)]
                for line in ask.rates
            ],
            [self.busy.get(slot.scope, 0) for slot in ask.slots],
        )
        if not outcome.ok:
            return outcome
        for line in ask.budgets:
            self.lines[line.key] = line
            self._budget(line.key, 0, outcome.cost)
        for rate in ask.rates:
            self._window(rate.key, cur, ask.count if rate.kind == "requests" else outcome.tokens)
            self.old_buckets[rate.key] = min(
                self.old_buckets.get(rate.key, cur - BUCKETS), cur - BUCKETS
            )
        until = ask.now + ask.lease_s
        for slot in ask.slots:
            self.busy[slot.scope] = self.busy.get(slot.scope, 0) + 1
            self.new_slots.append((slot.scope, ask.rid, until))
        self.new_reservations.append(
            (
                ask.rid,
                until,
                outcome.cost,
                [b.key for b in ask.budgets],
                [s.scope for s in ask.slots],
            )
        )
        return outcome

    def release(self, rid: str) -> bool:
        held = self.held.pop(rid, None)
        if held is None:
            return False  # settled already, or swept
        for key in held.budget_keys:
            self._budget(key, 0, -held.cost)
        for scope in held.slot_scopes:
            self.gone_slots.append((scope, rid))
            if scope in self.busy and held.until > self.counted_after:
                self.busy[scope] -= 1
        return True

    def settle(self, s: Settlement) -> list[tuple[int, int]]:
        held = self.held.get(s.rid)
        self.release(s.rid)
        if s.keep and held is not None:
            for key in held.budget_keys:
                self._budget(key, 0, s.keep)
            self.new_reservations.append((s.rid, held.until, s.keep, list(held.budget_keys), []))
        for line in s.budgets:
            self.lines[line.key] = line
            self._budget(line.key, s.actual_pusd, 0)
        delta = s.actual_tokens - s.tokens
        if delta:
            admitted, cur = bucket(s.admitted_at), bucket(s.now)
            for rate in s.token_rates:
                if admitted > cur - BUCKETS:
                    if (rate.key, admitted) in self.windows:  # else aged out: nothing to correct
                        self._window(rate.key, admitted, delta)
                elif delta > 0:
                    self._window(rate.key, cur, delta)
        return [(v[0], v[1]) for v in (self.budgets[line.key] for line in s.budgets)]

    def run(self, ops: Sequence[Ask | Settlement]) -> list[Outcome | list[tuple[int, int]]]:
        return [self.admit(op) if isinstance(op, Ask) else self.settle(op) for op in ops]
