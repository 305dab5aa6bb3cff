"""What a virtual key's Principal carries for admission: the limits of the key and of its
team, each a scope of its own counters. Built once per key by the key cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.counters.limits import Limits
from gateway.counters.periods import period_start, ttl_s
from gateway.counters.plan import BudgetLine, Label, RateLine, SlotLine

DAY_S = 86400  # every period starts at a UTC midnight


@dataclass(frozen=True, slots=True)
class Scope:
    id: str  # "k:<key id>" | "t:<team id>"
    label: Label
    limits: Limits


@dataclass(frozen=True, slots=True)
class Lines:
    budgets: tuple[BudgetLine, ...]
    rates: tuple[RateLine, ...]
    slots: tuple[SlotLine, ...]
    allow_unpriced: bool  # every budget that applies lets unpriced models through at $0


@dataclass(frozen=True, slots=True)
class Quota:
    scopes: tuple[Scope, ...]  # only scopes with some limit: empty means nothing to do
    # Lines by UTC day (every period starts at a midnight): made once a day, not per call;
    # keyed by the date (lines()) and by the unix day number (lines_at()).
    _by_day: dict[object, Lines] = field(default_factory=dict, compare=False, repr=False)

    def lines(self, now: datetime) -> Lines:
        """The counters one call at `now` (naive UTC datetime) touches."""
        day = now.date()
        found = self._by_day.get(day)
        if found is None:
            if len(self._by_day) > 6:
                self._by_day.clear()
            found = self._by_day[day] = self._lines(now)
        return found

    def lines_at(self, t: float) -> Lines:
        """lines() at unix time `t`, with no datetime made unless the day is new."""
        day = int(t // DAY_S)
        found = self._by_day.get(day)
        if found is None:
            found = self._by_day[day] = self.lines(
                datetime.fromtimestamp(t, UTC).replace(tzinfo=None)
            )
        return found

    def _lines(self, now: datetime) -> Lines:
        budgets: list[BudgetLine] = []
        rates: list[RateLine] = []
        slots: list[SlotLine] = []
        for scope in self.scopes:
            limits = scope.limits
            for budget in limits.budgets:
                budgets.append(
                    BudgetLine(
                        scope.id,
                        scope.label,
                        budget.period,
                        period_start(budget.period, now),
                        budget.pusd,
                        ttl_s(budget.period),
                    )
                )
            if limits.rpm is not None:
                rates.append(RateLine(scope.id, scope.label, "requests", limits.rpm))
            if limits.tpm is not None:
                rates.append(RateLine(scope.id, scope.label, "tokens", limits.tpm))
            if limits.max_parallel is not None:
                slots.append(SlotLine(scope.id, scope.label, limits.max_parallel))
        unpriced = all(b.allow_unpriced for scope in self.scopes for b in scope.limits.budgets)
        return Lines(tuple(budgets), tuple(rates), tuple(slots), unpriced)


def build(
    key_id: str,
    key_name: str,
    key_limits: Limits,
    team_id: str | None,
    team_name: str | None,
    team_limits: Limits,
) -> Quota | None:
    scopes = []
    if not key_limits.empty:
        scopes.append(Scope(f"k:{key_id}", Label("key", key_name), key_limits))
    if team_id is not None and team_name is not None and not team_limits.empty:
        scopes.append(Scope(f"t:{team_id}", Label("team", team_name), team_limits))
    return Quota(tuple(scopes)) if scopes else None
