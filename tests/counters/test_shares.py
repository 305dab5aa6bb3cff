"""Per-process shares (gateway.counters.shares) over the real shared backends (SQLite,
PostgreSQL, Valkey): calls far from the limits admitted and settled in memory, the shared
counters never below the truth, equal to it after a sync; near a limit every call on the
exact path; a dead process's shares swept after their short lease. Two Shares over one
backend stand for two processes. Time is a clock the test moves, so no test sleeps."""

from __future__ import annotations

import random
from typing import Any

from gateway.counters import sizing
from gateway.counters.logic import bucket
from gateway.counters.plan import BUCKET_S, Ask, BudgetLine, Outcome, RateLine, Settlement, SlotLine
from gateway.counters.share_state import SHARE_LEASE_S
from gateway.counters.share_sync import IDLE_S, SYNC_S
from gateway.counters.shares import Shares
from tests.counters.conftest import scope
from tests.counters.test_backends import LABEL, ask, budget

USD = 10**12


class Clock:
    def __init__(self) -> None:
        self.now = bucket(1_796_000_000.0) * BUCKET_S + 0.5  # early in a bucket

    def __call__(self) -> float:
        return self.now


def shares_over(counters: Any, clock: Clock) -> Shares:
    return Shares(
        counters, lambda s: (_ for _ in ()).throw(AssertionError(s)), lambda *_: None, clock=clock
    )


def settlement(a: Ask, outcome: Outcome, actual: int, tokens: int, now: float) -> Settlement:
    return Settlement(
        a.rid,
        now,
        a.now,
        a.budgets,
        tuple(r for r in a.rates if r.kind == "tokens"),
        a.slots,
        outcome.cost,
        outcome.tokens,
        actual,
        tokens,
    )


async def call(shares: Shares, counters: Any, a: Ask) -> tuple[Outcome, bool]:
    """As gateway.admission does it: from the shares, else on the counters."""
    local = shares.admit(a)
    if local is not None:
        return local, True
    outcome = await counters.admit(a)
    shares.learn(a, outcome)
    return outcome, False


async def finish(shares: Shares, counters: Any, s: Settlement) -> None:
    if not shares.settle(s):
        await counters.settle(s)


# -- the arithmetic -------------------------------------------------------------------


def test_share_sizes_and_the_high_water_rule() -> None:
    assert sizing.share_size(64_000_000, 100) == 102_400  # capped at 1024 calls' worth
    assert sizing.share_size(640_000, 100) == 10_000  # 1/64 of what is free
    assert sizing.share_size(204_799, 100) == 0  # under 32 calls' worth: none
    assert sizing.share_size(204_800, 100) == 3_200
    assert sizing.share_size(10_000, 0) == 156  # a free call counts as needing 1
    assert sizing.keeps(63 * 3_200, 3_200) and not sizing.keeps(63 * 3_200 - 1, 3_200)
    assert sizing.slot_block(100_000) == 64 and sizing.slot_block(4_096) == 16
    assert sizing.slot_block(4_095) == 0 and sizing.slot_block(2) == 0
    # Small limits, as the race and the rate-limit tests use, never get a share.
    assert sizing.share_size(5, 1) == 0 and sizing.share_size(1000, 1) == 0
    assert sizing.share_size(3 * 10**10, 10**8) == 0  # 0.03 USD, calls of 0.0001 USD


# -- over the backends ----------------------------------------------------------------


async def test_far_from_the_limits_calls_are_admitted_and_settled_in_memory(counters: Any) -> None:
    if counters.kind == "memory":
        return  # its own process's counters: no shares
    clock = Clock()
    sc = scope()
    line = budget(sc, 1000 * USD)
    rpm, tpm = RateLine(sc, LABEL, "requests", 10**9), RateLine(sc, LABEL, "tokens", 10**12)
    slot = SlotLine(sc, LABEL, 100_000)
    shares = shares_over(counters, clock)

    def make(i: int) -> Ask:
        return ask(f"c{i}", clock.now, (line,), (rpm, tpm), (slot,), 100, 10, 100, 20, 50)

    first, local = await call(shares, counters, make(0))
    assert first.ok and not local  # no share yet: the exact path, and the sync takes them
    await finish(shares, counters, settlement(make(0), first, 700, 90, clock.now))
    await shares.sync()
    spent, reserved = (await counters.read([line], [], clock.now))[0][0]
    assert spent == 700 and reserved == 1024 * 1100  # the share: 1024 calls' worst case
    actual = 700
    for i in range(1, 40):
        a = make(i)
        outcome, local = await call(shares, counters, a)
        assert outcome.ok and local and outcome.cost == 1100 and outcome.granted_out == 100
        # The headers' view: the window as taken plus this process's calls since.
        assert outcome.rates[0][0] == i + 1
        cost = random.Random(i).randint(0, 1100)
        actual += cost
        await finish(shares, counters, settlement(a, outcome, cost, 60, clock.now))
    # Before a sync the counters hold the share (never below the truth); after, the spend.
    before = (await counters.read([line], [], clock.now))[0][0]
    assert before[0] + before[1] >= actual
    await shares.sync()
    values, windows = await counters.read([line], [rpm, tpm], clock.now)
    assert values[0][0] == actual
    clock.now += IDLE_S + 0.1  # no more calls: every share goes back
    await shares.sync()
    await shares.sync()
    values, windows = await counters.read([line], [rpm, tpm], clock.now)
    assert values == [(actual, 0)]
    assert windows[0][0] == 40  # every request counted once, the unused block given back
    assert windows[1][0] == 90 + 39 * 60  # each call's tokens as it used them
    assert not shares.calls and not shares.budgets and not shares.rates


async def test_two_processes_never_overspend_and_a_binding_share_turns_exact(counters: Any) -> None:
    """Two processes drawing on one budget through their shares until it is spent: never
    over it; near it the shares are back and every call is on the counters, refused only
    when the budget cannot pay its worst case (the race test's rule); afterwards the
    counters hold the sum of the actual costs, exactly."""
    if counters.kind == "memory":
        return
    clock = Clock()
    sc = scope()
    line = BudgetLine(sc, LABEL, "total", budget(sc, 1).start, 2 * 10**11, None)  # 0.2 USD
    procs = [shares_over(counters, clock), shares_over(counters, clock)]
    rng = random.Random(5)
    live: list[tuple[int, Ask, Outcome]] = []
    actual = refused = local_calls = 0
    for i in range(3200):
        clock.now += 0.01
        p = i % 2
        worst = rng.randint(6, 8) * 10**7  # up to 0.00008 USD
        a = Ask(f"r{i}", clock.now, (line,), (), (), worst, 0, 0, 0, 0)
        outcome, local = await call(procs[p], counters, a)
        local_calls += local
        if outcome.ok:
            live.append((p, a, outcome))
        else:
            refused += 1
            assert outcome.reason == "budget"
            in_flight = sum(o.cost for _, _, o in live)
            assert line.limit - actual - in_flight < worst, "refused while the budget could pay"
        while live and (len(live) > 20 or rng.random() < 0.3):
            q, done, got = live.pop(rng.randrange(len(live)))
            cost = rng.randint(got.cost * 9 // 10, got.cost)
            actual += cost
            await finish(procs[q], counters, settlement(done, got, cost, 0, clock.now))
        assert actual <= line.limit
        if i % 20 == 0:
            for shares in procs:
                await shares.sync()
        if i % 10 == 0:
            spent, reserved = (await counters.read([line], [], clock.now))[0][0]
            assert actual <= spent + reserved <= line.limit
    for q, done, got in live:
        actual += got.cost // 2
        await finish(procs[q], counters, settlement(done, got, got.cost // 2, 0, clock.now))
    for shares in procs:
        await shares.close()
    assert local_calls > 200 and refused > 0, (local_calls, refused)
    assert (await counters.read([line], [], clock.now))[0] == [(actual, 0)]


async def test_small_limits_take_no_share_and_touch_nothing_more(counters: Any) -> None:
    if counters.kind == "memory":
        return
    clock = Clock()
    sc = scope()
    # 2000 calls' worst case: under the 2048 a share needs
    line, rpm = budget(sc, 2000 * 1100), RateLine(sc, LABEL, "requests", 5)
    shares = shares_over(counters, clock)
    for i in range(3):
        a = ask(f"s{i}", clock.now, (line,), (rpm,), (SlotLine(sc, LABEL, 4),))
        outcome, local = await call(shares, counters, a)
        assert outcome.ok and not local and outcome.rates[0][0] == i + 1
        await shares.sync()
    values, windows = await counters.read([line], [rpm], clock.now)
    assert values == [(0, 3 * 1100)] and windows[0][0] == 3  # the calls' own, nothing else


async def test_a_dead_process_shares_are_swept_after_their_short_lease(counters: Any) -> None:
    if counters.kind == "memory":
        return
    clock = Clock()
    sc = scope()
    line, slot = budget(sc, 1000 * USD), SlotLine(sc, LABEL, 4096)
    dead = shares_over(counters, clock)
    a = ask("d0", clock.now, (line,), (), (slot,))
    await call(dead, counters, a)
    await dead.sync()
    assert dead.admit(ask("d1", clock.now, (line,), (), (slot,))) is not None
    # The process dies here, holding its shares and a call: nobody settles them.
    assert (await counters.read([line], [], clock.now))[0][0][1] == 1100 + 1024 * 1100
    assert await counters.sweep(clock.now + SHARE_LEASE_S - 1) == 0
    assert await counters.sweep(clock.now + SHARE_LEASE_S + 1) == 1 + 16  # the slice, 16 slots
    assert (await counters.read([line], [], clock.now))[0][0] == (0, 1100)  # the call's own
    # All 4096 slots are free for others again but the one call's (swept at its own lease).
    other = shares_over(counters, clock)
    got = await counters.admit(ask("o1", clock.now, (), (), (SlotLine(sc, LABEL, 2),)))
    assert got.ok
    await other.close()


async def test_shares_are_renewed_while_held(counters: Any) -> None:
    """A long call keeps its slice past the share's lease: renewed at each sync, never
    swept; once idle the slice shrinks to that call's worst case."""
    if counters.kind == "memory":
        return
    clock = Clock()
    sc = scope()
    line = budget(sc, 1000 * USD)
    shares = shares_over(counters, clock)
    first, _ = await call(shares, counters, ask("n0", clock.now, (line,)))
    await finish(
        shares, counters, settlement(ask("n0", clock.now, (line,)), first, 0, 0, clock.now)
    )
    await shares.sync()
    long = ask("n1", clock.now, (line,))
    outcome = shares.admit(long)
    assert outcome is not None
    for _ in range(8):  # 80 s: well past SHARE_LEASE_S
        clock.now += 10
        await shares.sync()
        assert await counters.sweep(clock.now) == 0
        assert (await counters.read([line], [], clock.now))[0][0] == (0, 1100)  # shrunk to it
    await finish(shares, counters, settlement(long, outcome, 500, 0, clock.now))
    await shares.close()
    assert (await counters.read([line], [], clock.now))[0][0] == (500, 0)


async def test_at_a_new_bucket_calls_wait_for_the_sync_that_brings_the_blocks(
    counters: Any,
) -> None:
    """Rate blocks are usable only in their bucket, so at a bucket's start every one ends
    at once. A call that finds them gone while a sync is bringing new ones is told to wait
    for that sync (Shares.refill) and is then admitted from the new blocks, instead of a
    crowd of calls taking the exact path; a call refused a share near the limit is not."""
    if counters.kind == "memory":
        return
    clock = Clock()
    sc = scope()
    rpm, tpm = RateLine(sc, LABEL, "requests", 10**9), RateLine(sc, LABEL, "tokens", 10**12)
    shares = shares_over(counters, clock)
    first, local = await call(shares, counters, ask("b0", clock.now, (), (rpm, tpm)))
    # The lines' first call: nothing known of them yet, so no waiting, the exact path.
    assert first.ok and not local and shares.refill() is None
    await shares.sync()
    assert shares.admit(ask("b1", clock.now, (), (rpm, tpm))) is not None
    # The sync loop's next round: every SYNC_S, and just past a bucket's start.
    assert shares._next_sync_s() == SYNC_S
    edge = (bucket(clock.now) + 1) * BUCKET_S
    clock.now = edge - 0.05
    assert abs(shares._next_sync_s() - 0.051) < 1e-6
    clock.now = edge + 0.001
    shares._last_wake = float("-inf")  # the last wake long ago (wakes are 20 ms apart at most)
    late = ask("b2", clock.now, (), (rpm, tpm))
    assert shares.admit(late) is None
    refill = shares.refill()
    assert refill is not None
    await refill
    outcome = shares.admit(late)
    assert outcome is not None and outcome.ok
    assert outcome.rates[0][0] == 3  # b0 on the counters, b1 in the old block, b2 in the new
    await shares.close()
    # Near the limit no share is to be had: no waiting, the exact path.
    tight = shares_over(counters, clock)
    small = RateLine(scope(), LABEL, "requests", 100)
    await call(tight, counters, ask("t0", clock.now, (), (small,)))
    await tight.sync()
    assert tight.admit(ask("t1", clock.now, (), (small,))) is None
    assert tight.refill() is None
    await tight.close()
