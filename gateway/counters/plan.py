"""What admission asks the counters, and what they answer: plain values, the same for
every backend (SQL store, Redis/Valkey, in-process).

Money is pico-USD, tokens and requests whole numbers, times unix seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

from gateway.counters.periods import stamp


def _window_s() -> float:
    """GATEWAY_RATE_WINDOW_S: the rate limits' window, 60 s (per minute). Shorter only for
    tests and experiments (the limits then count per that window); the same on every replica."""
    raw = os.environ.get("GATEWAY_RATE_WINDOW_S", "")
    try:
        value = float(raw) if raw else 60.0
    except ValueError:
        value = 60.0
    return value if value > 0 else 60.0


# Rate windows: a minute counted in 6 buckets of BUCKET_S seconds. A check sums the
# current bucket and the 6 before it, which together always cover the last 60 s (and up
# to BUCKET_S more): see gateway.counters.logic for the error bound.
WINDOW_S = _window_s()
BUCKET_S = WINDOW_S / 6
BUCKETS = 7
# A reservation, a concurrency slot: released by settlement; if the process holding it
# died, swept this long after it was made (a call's; a process's share has a shorter one,
# renewed while held: gateway.counters.shares).
LEASE_S = 3600


@dataclass(frozen=True, slots=True)
class Label:
    kind: str  # "key" | "team"
    name: str  # the operator's name for it (metric label, messages)


@dataclass(frozen=True, slots=True)
class BudgetLine:
    scope: str  # "k:<key id>" | "t:<team id>"
    label: Label
    period: str
    start: datetime  # naive UTC: the period's start, part of the counter's key
    limit: int  # pico-USD
    ttl_s: int | None = None
    key: str = field(init=False, compare=False)  # the counter's name, made once

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.scope}:{self.period}:{stamp(self.start)}")


@dataclass(frozen=True, slots=True)
class RateLine:
    scope: str
    label: Label
    kind: str  # "requests" | "tokens"
    limit: int  # per minute
    key: str = field(init=False, compare=False)
    limit_text: str = field(init=False, compare=False, repr=False)  # for the headers

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.scope}:{self.kind[0]}")
        object.__setattr__(self, "limit_text", str(self.limit))


@dataclass(frozen=True, slots=True)
class SlotLine:
    scope: str
    label: Label
    limit: int


# Not frozen: one or two are made per call, and a frozen dataclass sets each field
# through object.__setattr__ (about 0.5k instructions a field). Never changed once made.
@dataclass(slots=True)
class Ask:
    rid: str  # the reservation's id, unique per call
    now: float
    budgets: tuple[BudgetLine, ...]
    rates: tuple[RateLine, ...]
    slots: tuple[SlotLine, ...]
    input_pusd: int  # the worst case of everything but the output
    out_pusd: int  # pico-USD per output token, worst over the call's models, times n
    max_out: int  # output tokens the call may produce as sent (0: embeddings)
    min_out: int  # the least answer worth lowering to; below that the budget refuses
    input_tokens: int  # for the token rate: the input's estimate
    out_factor: int = 1  # n: each output token counts n times in the token rate
    count: int = 1  # requests the request windows count: 1 a call, more for a process's share
    lease_s: float = LEASE_S  # swept this long after `now` unless settled (or renewed)

    def tokens(self, out: int) -> int:
        return self.input_tokens + out * self.out_factor


@dataclass(slots=True)
class Outcome:
    ok: bool
    reason: str | None = None  # budget | requests | tokens | parallel | too_large | unseeded
    line: int = 0  # which budget, rate or slot line refused
    retry_after: float | None = None  # seconds, for rate refusals
    granted_out: int = 0  # output tokens reserved for (lower than max_out: lowered)
    cost: int = 0  # pico-USD reserved
    tokens: int = 0  # tokens counted in the token window at admission
    budgets: list[tuple[int, int]] = field(
        default_factory=list
    )  # (spent, reserved) per budget line
    rates: list[tuple[int, float]] = field(
        default_factory=list
    )  # (used, reset seconds) per rate line


# Not frozen: one or two are made per call, and a frozen dataclass sets each field
# through object.__setattr__ (about 0.5k instructions a field). Never changed once made.
@dataclass(slots=True)
class Settlement:
    """Replace a reservation by what the call cost."""

    rid: str
    now: float
    admitted_at: float
    budgets: tuple[BudgetLine, ...]
    token_rates: tuple[RateLine, ...]
    slots: tuple[SlotLine, ...]
    cost: int  # the reservation, pico-USD
    tokens: int  # tokens counted at admission
    actual_pusd: int
    actual_tokens: int
    # Pico-USD of the reservation that stays held under the same id (a process's share
    # shrinking to its calls still in flight: gateway.counters.shares); 0: all released.
    keep: int = 0
