"""What a key or team may spend and how fast: budgets, rate limits, concurrency.

Stored as one JSON value per key and per team (`limits` columns), parsed here for the
CLI, the admin API and the key cache alike. Money is integer pico-USD (1e-12 USD), the
ledger's unit, so a budget, a reservation and a ledger row add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

PICO = (
    10**12
)  # pico-USD per USD, as in gateway.store.schema (not imported: the store imports this module)


class LimitsError(ValueError):
    """A budget or limit that cannot be used; the store turns it into a StoreError."""


PERIODS = ("total", "daily", "weekly", "monthly")
UNPRICED = "allow-unpriced"  # the per-budget switch: calls to unpriced models pass at $0
MAX_USD = Decimal(1_000_000)  # one budget; far below the 64-bit pico-USD ceiling


@dataclass(frozen=True, slots=True)
class Budget:
    pusd: int  # the limit, pico-USD
    period: str  # total | daily | weekly | monthly (calendar, UTC)
    allow_unpriced: bool = False

    @property
    def usd(self) -> str:
        return usd_text(self.pusd)

    def spec(self) -> str:
        return f"{self.usd}/{self.period}" + (f"/{UNPRICED}" if self.allow_unpriced else "")

    def public(self) -> dict[str, Any]:
        return {
            "amount_usd": self.usd,
            "period": self.period,
            "allow_unpriced": self.allow_unpriced,
        }


@dataclass(frozen=True, slots=True)
class Limits:
    budgets: tuple[Budget, ...] = ()
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # tokens (input + output) per minute
    max_parallel: int | None = None  # requests in flight at once

    @property
    def empty(self) -> bool:
        return (
            not self.budgets and self.rpm is None and self.tpm is None and self.max_parallel is None
        )

    def to_json(self) -> dict[str, Any] | None:
        if self.empty:
            return None
        return {
            "budgets": [b.spec() for b in self.budgets],
            "rpm": self.rpm,
            "tpm": self.tpm,
            "max_parallel": self.max_parallel,
        }

    def public(self) -> dict[str, Any]:
        return {
            "budgets": [b.public() for b in self.budgets],
            "rpm": self.rpm,
            "tpm": self.tpm,
            "max_parallel": self.max_parallel,
        }


NO_LIMITS = Limits()


def usd_text(pusd: int) -> str:
    text = f"{Decimal(pusd) / PICO:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_budget(text: Any, what: str = "budget") -> Budget:
    """`AMOUNT/PERIOD[/allow-unpriced]`, e.g. `10/daily`, `0.05/total`, `200/monthly/allow-unpriced`;
    or the admin API's object form {"amount_usd", "period", "allow_unpriced"}."""
    if isinstance(text, dict):
        amount, period, unpriced = (
            text.get("amount_usd"),
            text.get("period"),
            bool(text.get("allow_unpriced")),
        )
        if set(text) - {"amount_usd", "period", "allow_unpriced"}:
            raise LimitsError(
                f"{what}: unknown fields {sorted(set(text) - {'amount_usd', 'period', 'allow_unpriced'})}"
            )
    elif isinstance(text, str):
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != UNPRICED):
            raise LimitsError(
                f"{what} {text!r}: give AMOUNT/PERIOD (e.g. 10/daily), PERIOD one of "
                f"{', '.join(PERIODS)}, optionally /{UNPRICED}"
            )
        amount, period, unpriced = parts[0], parts[1], len(parts) == 3
    else:
        raise LimitsError(f"{what}: give AMOUNT/PERIOD (e.g. 10/daily)")
    if period not in PERIODS:
        raise LimitsError(f"{what} {text!r}: the period must be one of {', '.join(PERIODS)}")
    try:
        value = Decimal(str(amount).strip().removeprefix("$"))
    except InvalidOperation:
        raise LimitsError(f"{what} {text!r}: {amount!r} is not an amount in USD") from None
    if not value.is_finite() or value <= 0 or value > MAX_USD:
        raise LimitsError(f"{what} {text!r}: the amount must be above 0 and at most {MAX_USD} USD")
    pusd = value * PICO
    if pusd != pusd.to_integral_value():
        raise LimitsError(f"{what} {text!r}: at most 12 decimals")
    return Budget(int(pusd), period, unpriced)


def _count(value: Any, name: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 10**12:
        raise LimitsError(f"{what} {name}: a whole number of at least 1 (or null for no limit)")
    return value


def check_limits(raw: Any, what: str) -> Limits:
    """The stored or sent form (dict with budgets, rpm, tpm, max_parallel; None) as Limits."""
    if raw is None:
        return NO_LIMITS
    if not isinstance(raw, dict) or set(raw) - {"budgets", "rpm", "tpm", "max_parallel"}:
        raise LimitsError(f"{what} limits: an object with budgets, rpm, tpm, max_parallel")
    budgets = raw.get("budgets") or []
    if not isinstance(budgets, list) or len(budgets) > 16:
        raise LimitsError(
            f'{what} budgets: a list of at most 16 (e.g. ["10/daily", "200/monthly"])'
        )
    parsed = tuple(parse_budget(b, f"{what} budget") for b in budgets)
    return Limits(
        parsed,
        _count(raw.get("rpm"), "rpm", what),
        _count(raw.get("tpm"), "tpm", what),
        _count(raw.get("max_parallel"), "max_parallel", what),
    )


def merge(current: Limits, changes: dict[str, Any], what: str) -> Limits:
    """`current` with the fields in `changes` (budgets, rpm, tpm, max_parallel) replaced;
    a budget list replaces every budget, None clears a field."""
    data: dict[str, Any] = {
        "budgets": [b.spec() for b in current.budgets],
        "rpm": current.rpm,
        "tpm": current.tpm,
        "max_parallel": current.max_parallel,
    }
    data.update(changes)
    return check_limits(data, what)
