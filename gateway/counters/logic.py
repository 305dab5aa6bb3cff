"""The admission decision, as one pure function of the counters' current values.

The SQL backend runs it inside a locked transaction; gateway/counters/admit.lua is the
same decision for Redis/Valkey, line for line (tests/counters check they agree).

Budgets: a call is admitted when its worst case fits what every budget that applies has
left (limit - spent - reserved). When it does not, but its input and at least `min_out`
output tokens do, its output is lowered to what the tightest budget pays for.

Rate windows (requests and tokens per minute): the minute is counted in buckets of
BUCKET_S (10) seconds; a check sums the current bucket and the six before it. Those
always cover the last 60 s, so **no rolling 60 s ever holds more than the limit** (no
over-admission at all); they may cover up to 70 s, so a client running flat out can be
held to as little as limit per 70 s (at most 1/7, 14 %, under the limit). Tokens are
counted at admission by estimate (input estimate + reserved output) and corrected to
the actual usage at settlement, so the token bound holds for estimates and is off by
the estimate's error until the call settles. `retry_after` is the time until enough
buckets have aged out for the same call to fit, if nothing else comes in meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gateway.counters.plan import BUCKET_S, BUCKETS, Ask, Outcome


def bucket(now: float) -> int:
    return math.floor(now / BUCKET_S)


def drop_time(now: float, k: int) -> float:
    """Seconds from `now` until bucket k of the window (0 = oldest) stops being counted."""
    return (bucket(now) + 1 + k) * BUCKET_S - now


def reset_s(now: float, buckets: Sequence[int]) -> float:
    """Seconds until the window is empty again (OpenAI's x-ratelimit-reset-*)."""
    for k in range(BUCKETS - 1, -1, -1):
        if buckets[k] > 0:
            return drop_time(now, k)
    return 0.0


def retry_after(now: float, buckets: Sequence[int], amount: int, limit: int) -> float:
    used = sum(buckets)
    for k in range(BUCKETS):
        used -= buckets[k]
        if used + amount <= limit:
            return drop_time(now, k)
    return drop_time(now, BUCKETS - 1)


def decide(
    ask: Ask,
    budgets: Sequence[tuple[int, int]],
    rates: Sequence[Sequence[int]],
    slots: Sequence[int],
) -> Outcome:
    """`budgets`: (spent, reserved) per budget line; `rates`: the window's BUCKETS counts
    per rate line, oldest first; `slots`: calls in flight per slot line."""
    granted = ask.max_out
    if budgets:
        left = [
            line.limit - spent - reserved
            for line, (spent, reserved) in zip(ask.budgets, budgets, strict=True)
        ]
        tightest = min(range(len(left)), key=left.__getitem__)
        room = left[tightest]
        if ask.input_pusd + ask.out_pusd * ask.max_out > room:
            if ask.out_pusd > 0 and room >= ask.input_pusd:
                granted = min(ask.max_out, (room - ask.input_pusd) // ask.out_pusd)
            else:
                granted = -1
            if granted < ask.min_out or granted < 0:
                return Outcome(False, "budget", tightest, budgets=list(budgets))
    cost = ask.input_pusd + ask.out_pusd * granted
    tokens = ask.tokens(granted)
    for i, (line, window) in enumerate(zip(ask.rates, rates, strict=True)):
        amount = ask.count if line.kind == "requests" else tokens
        if amount > line.limit:
            return Outcome(False, "too_large", i)
        if sum(window) + amount > line.limit:
            return Outcome(False, line.kind, i, retry_after(ask.now, window, amount, line.limit))
    for i, (slot, busy) in enumerate(zip(ask.slots, slots, strict=True)):
        if busy >= slot.limit:
            return Outcome(False, "parallel", i, 1.0)
    after_rates = []
    for line, window in zip(ask.rates, rates, strict=True):
        counts = [*window[:-1], window[-1] + (ask.count if line.kind == "requests" else tokens)]
        after_rates.append((sum(counts), reset_s(ask.now, counts)))
    return Outcome(
        True,
        granted_out=granted,
        cost=cost,
        tokens=tokens,
        budgets=[(spent, reserved + cost) for spent, reserved in budgets],
        rates=after_rates,
    )
