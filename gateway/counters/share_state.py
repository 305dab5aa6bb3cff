"""What a process holds of the shared counters' lines (gateway.counters.shares), and the
shares as the ordinary operations the backends know: a share is taken with an Ask and
given back with a Settlement, like a call."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from gateway.counters.plan import Ask, BudgetLine, RateLine, Settlement, SlotLine

SHARE_LEASE_S = 30.0  # a dead process's shares are swept this long (+ a sweep) after its last sync


@dataclass(slots=True, eq=False)
class Slice:
    """One reservation this process holds for one line: a slice of a budget, or a block
    of a rate window counted in one bucket."""

    rid: str
    taken_at: float
    size: int  # reserved in the shared counters (pico-USD; requests or tokens counted)
    base: int = 0  # rates: the window's count besides this block when it was taken
    bucket: int = 0  # rates: the bucket it is counted in, and usable in
    used: int = 0  # worst cases of its calls in flight + actual of those settled (or counted)
    spent: int = 0  # budgets: the actual cost of its settled calls, not yet in the counters
    calls: int = 0  # calls in flight drawn on it (budgets and tokens: they settle into it)
    open: bool = True  # calls may still be drawn on it
    sent: int | None = None  # rates: what the counters hold for it once given back
    renewed_at: float = 0.0


@dataclass(slots=True, eq=False)
class Line:
    """What this process holds of one budget or rate line, and knows of it."""

    line: BudgetLine | RateLine
    slices: list[Slice] = field(default_factory=list)
    current: Slice | None = None  # the open slice calls draw on
    free: int | None = None  # what the line had left (shares included) when last seen
    seen: tuple[int, int] = (0, 0)  # budgets: (spent, reserved) when last seen
    need: int = 1  # the most one call asked of it since the last share was taken
    wanted: bool = False  # a call found no room since the last sync
    blocked: bool = False  # no share to be had when last tried (near the limit)
    last_use: float = 0.0


@dataclass(slots=True, eq=False)
class Slots:
    """A block of concurrency slots, each an ordinary slot reservation."""

    line: SlotLine
    rids: list[str] = field(default_factory=list)
    taken_at: float = 0.0
    busy: int = 0  # calls in flight on these slots
    open: bool = False
    wanted: bool = False
    last_use: float = 0.0
    renewed_at: float = 0.0
    cooldown_until: float = 0.0
    blocked: bool = False  # no block to be had (too small a limit, or just refused)


@dataclass(slots=True)
class Local:
    """A call admitted from the shares: what its settlement gives back."""

    budgets: list[Slice]
    tokens: list[Slice]
    slots: list[Slots]


def new_rid() -> str:
    return f"share-{random.getrandbits(80):020x}"


def take(line: BudgetLine | RateLine, size: int, now: float) -> Ask:
    """A share as an admission: a budget slice reserved like a call's input, a block of
    requests or tokens counted like a call's."""
    if isinstance(line, BudgetLine):
        return Ask(new_rid(), now, (line,), (), (), size, 0, 0, 0, 0, lease_s=SHARE_LEASE_S)
    if line.kind == "requests":
        return Ask(
            new_rid(), now, (), (line,), (), 0, 0, 0, 0, 0, count=size, lease_s=SHARE_LEASE_S
        )
    return Ask(new_rid(), now, (), (line,), (), 0, 0, 0, 0, size, lease_s=SHARE_LEASE_S)


def take_slots(line: SlotLine, size: int, now: float) -> list[Ask]:
    rid = new_rid()
    return [
        Ask(f"{rid}-{i}", now, (), (), (line,), 0, 0, 0, 0, 0, lease_s=SHARE_LEASE_S)
        for i in range(size)
    ]


def give_back(line: BudgetLine, s: Slice, now: float, keep: int = 0) -> Settlement:
    """A budget slice's settled spend moves to `spent`; its reservation is released but
    `keep` (the worst cases of its calls still in flight)."""
    return Settlement(s.rid, now, s.taken_at, (line,), (), (), s.size, 0, s.spent, 0, keep)


def give_back_block(line: RateLine, s: Slice, now: float) -> Settlement:
    """A rate block's count becomes what its calls counted (tokens: corrected to their
    actual usage as they settled); later corrections are the same, as deltas."""
    sent = s.size if s.sent is None else s.sent
    return Settlement(s.rid, now, s.taken_at, (), (line,), (), 0, sent, 0, s.used)


def give_back_slot(line: SlotLine, rid: str, taken_at: float, now: float) -> Settlement:
    return Settlement(rid, now, taken_at, (), (), (line,), 0, 0, 0, 0)
