"""Every counters backend against the same scenarios, on real servers: budgets reserved
and settled exactly, output lowered to what a budget pays for, request and token windows
with honest retry-after, concurrency slots, the sweep of a dead process's reservations,
and admissions racing for one budget. Time is the `now` each call carries, so windows
are tested without sleeping."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any

from gateway.counters.memory import MemoryCounters
from gateway.counters.plan import LEASE_S, Ask, BudgetLine, Label, RateLine, Settlement, SlotLine
from tests.counters.conftest import scope

START = datetime(2026, 12, 1)
T0 = 1_796_000_000.0  # a multiple of 10: the start of a bucket
LABEL = Label("key", "k1")


def budget(sc: str, limit: int, period: str = "daily") -> BudgetLine:
    return BudgetLine(sc, LABEL, period, START, limit, 86400 * 2)


def ask(
    rid: str,
    now: float = T0,
    budgets: tuple[BudgetLine, ...] = (),
    rates: tuple[RateLine, ...] = (),
    slots: tuple[SlotLine, ...] = (),
    input_pusd: int = 100,
    out_pusd: int = 10,
    max_out: int = 100,
    min_out: int = 20,
    tokens: int = 50,
) -> Ask:
    return Ask(rid, now, budgets, rates, slots, input_pusd, out_pusd, max_out, min_out, tokens)


def settle(
    a: Ask,
    cost: int,
    reserved: int,
    actual: int,
    tokens: int = 0,
    reserved_tokens: int = 0,
    now: float | None = None,
) -> Settlement:
    return Settlement(
        a.rid,
        now or a.now,
        a.now,
        a.budgets,
        tuple(r for r in a.rates if r.kind == "tokens"),
        a.slots,
        reserved,
        reserved_tokens,
        actual,
        tokens,
    )


async def test_budget_reserves_lowers_refuses_and_settles_exactly(counters: Any) -> None:
    line = budget(scope(), 2500)
    first = await counters.admit(ask("a", budgets=(line,)))  # worst 100 + 10 x 100 = 1100
    assert (
        first.ok
        and first.cost == 1100
        and first.granted_out == 100
        and first.budgets == [(0, 1100)]
    )
    second = await counters.admit(ask("b", budgets=(line,)))
    assert second.ok and second.cost == 1100
    # 300 left: input 100 + 20 tokens at 10 fit; the answer is lowered to 20.
    third = await counters.admit(ask("c", budgets=(line,)))
    assert third.ok and third.granted_out == 20 and third.cost == 300
    fourth = await counters.admit(ask("d", budgets=(line,)))
    assert not fourth.ok and fourth.reason == "budget" and fourth.budgets == [(0, 2500)]
    assert (await counters.settle(settle(ask("a", budgets=(line,)), 0, 1100, 437))) == [(437, 1400)]
    await counters.settle(settle(ask("b", budgets=(line,)), 0, 1100, 1100))
    await counters.settle(
        settle(ask("c", budgets=(line,)), 0, 300, 0)
    )  # failed upstream: nothing spent
    spent, _ = await counters.read([line], [], T0)
    assert spent == [(1537, 0)]
    # 963 left: the worst case 1100 does not fit, 86 output tokens do.
    again = await counters.admit(ask("e", budgets=(line,)))
    assert again.ok and again.granted_out == 86 and again.cost == 960


async def test_every_budget_must_admit_and_the_tightest_decides(counters: Any) -> None:
    key, team = scope(), scope().replace("k:", "t:")
    lines = (budget(key, 10_000), budget(team, 1_000, "monthly"))
    outcome = await counters.admit(ask("a", budgets=lines, max_out=100))
    assert (
        outcome.ok and outcome.granted_out == 90 and outcome.cost == 1000
    )  # the team's 1000 binds
    refused = await counters.admit(ask("b", budgets=lines))
    assert not refused.ok and refused.reason == "budget" and refused.line == 1


async def test_request_window_counts_down_and_retry_after_is_honest(counters: Any) -> None:
    rpm = RateLine(scope(), LABEL, "requests", 3)
    seen = []
    for i in range(3):
        outcome = await counters.admit(ask(f"r{i}", now=T0 + i, rates=(rpm,)))
        assert outcome.ok
        seen.append(outcome.rates[0][0])
    assert seen == [1, 2, 3]
    refused = await counters.admit(ask("r3", now=T0 + 5, rates=(rpm,)))
    assert not refused.ok and refused.reason == "requests"
    # All three sit in the bucket starting at T0: it leaves the window at T0 + 70.
    assert abs(refused.retry_after - 65.0) < 1e-6
    early = await counters.admit(ask("r4", now=T0 + 5 + refused.retry_after - 0.5, rates=(rpm,)))
    assert not early.ok
    late = await counters.admit(ask("r5", now=T0 + 5 + refused.retry_after, rates=(rpm,)))
    assert late.ok


async def test_no_rolling_minute_holds_more_than_the_limit(counters: Any) -> None:
    rpm = RateLine(scope(), LABEL, "requests", 5)
    admitted: list[float] = []
    rng = random.Random(7)
    now = T0
    for i in range(120):
        now += rng.uniform(0.2, 4.0)
        if (await counters.admit(ask(f"x{i}", now=now, rates=(rpm,)))).ok:
            admitted.append(now)
    for t in admitted:
        assert sum(1 for u in admitted if t - 60 < u <= t) <= 5
    # ... and at least limit per 70 s gets through when asked flat out.
    span = admitted[-1] - admitted[0]
    assert len(admitted) >= 5 * (span // 70)


async def test_tokens_admitted_by_estimate_and_corrected_by_usage(counters: Any) -> None:
    tpm = RateLine(scope(), LABEL, "tokens", 1000)
    first = ask("t1", rates=(tpm,), tokens=200, max_out=300)  # counts 200 + 300
    outcome = await counters.admit(first)
    assert outcome.ok and outcome.tokens == 500 and outcome.rates == [(500, 70.0)]
    assert not (
        await counters.admit(ask("t2", now=T0 + 1, rates=(tpm,), tokens=300, max_out=300))
    ).ok
    await counters.settle(settle(first, 0, 0, 0, tokens=250, reserved_tokens=500, now=T0 + 2))
    _, rates = await counters.read([], [tpm], T0 + 2)
    assert rates[0][0] == 250
    assert (await counters.admit(ask("t3", now=T0 + 3, rates=(tpm,), tokens=300, max_out=300))).ok
    too_big = await counters.admit(ask("t4", now=T0 + 3, rates=(tpm,), tokens=900, max_out=300))
    assert not too_big.ok and too_big.reason == "too_large"


async def test_concurrency_slots_and_the_sweep_of_dead_reservations(counters: Any) -> None:
    sc = scope()
    slot, line = SlotLine(sc, LABEL, 2), budget(sc, 10_000)
    a, b = ask("s1", slots=(slot,), budgets=(line,)), ask("s2", slots=(slot,), budgets=(line,))
    assert (await counters.admit(a)).ok and (await counters.admit(b)).ok
    refused = await counters.admit(ask("s3", slots=(slot,), budgets=(line,)))
    assert not refused.ok and refused.reason == "parallel"
    await counters.settle(settle(a, 0, 1100, 500))
    assert (await counters.admit(ask("s4", slots=(slot,), budgets=(line,)))).ok
    # s2 and s4 belong to a process that died: a lease later they are given back.
    assert await counters.sweep(T0 + LEASE_S - 1) == 0
    assert await counters.sweep(T0 + LEASE_S + 1) == 2
    spent, _ = await counters.read([line], [], T0)
    assert spent == [(500, 0)]
    assert (
        await counters.admit(ask("s5", now=T0 + LEASE_S + 2, slots=(slot,), budgets=(line,)))
    ).ok
    # A late settlement of a swept call still counts its spend, and releases nothing twice.
    await counters.settle(settle(b, 0, 1100, 700))
    spent, _ = await counters.read([line], [], T0)
    assert spent == [(1200, 1100)]


async def test_racing_admissions_never_overcommit_a_budget(counters: Any) -> None:
    line = budget(scope(), 1_100 * 7 + 50)
    outcomes = await asyncio.gather(
        *(counters.admit(ask(f"p{i}", budgets=(line,), min_out=100)) for i in range(40))
    )
    assert sum(o.ok for o in outcomes) == 7
    spent, _ = await counters.read([line], [], T0)
    assert spent == [(0, 7700)]


async def test_the_lua_script_decides_like_the_python_logic(counters: Any) -> None:
    """The same random sequence through this backend and through `decide` on a model."""
    if isinstance(counters, MemoryCounters):
        return  # the model itself
    model = MemoryCounters()
    rng = random.Random(11)
    sc = scope()
    lines = (budget(sc, 50_000),)
    rates = (RateLine(sc, LABEL, "requests", 9), RateLine(sc, LABEL, "tokens", 4000))
    slots = (SlotLine(sc, LABEL, 4),)
    now, live = T0, []
    for i in range(80):
        now += rng.uniform(0, 6)
        a = ask(
            f"q{i}",
            now=now,
            budgets=lines,
            rates=rates,
            slots=slots,
            input_pusd=rng.randint(0, 3000),
            out_pusd=rng.randint(0, 40),
            max_out=rng.randint(0, 400),
            min_out=rng.randint(0, 64),
            tokens=rng.randint(1, 900),
        )
        got, want = await counters.admit(a), await model.admit(a)
        assert (got.ok, got.reason, got.granted_out, got.cost, got.tokens) == (
            want.ok,
            want.reason,
            want.granted_out,
            want.cost,
            want.tokens,
        ), i
        if got.retry_after is not None or want.retry_after is not None:
            assert abs(got.retry_after - want.retry_after) < 1e-6
        if got.ok:
            assert got.budgets == want.budgets and [r[0] for r in got.rates] == [
                r[0] for r in want.rates
            ]
            live.append((a, got))
        if live and rng.random() < 0.5:
            done, outcome = live.pop(rng.randrange(len(live)))
            s = settle(
                done,
                0,
                outcome.cost,
                rng.randint(0, outcome.cost),
                rng.randint(0, outcome.tokens),
                outcome.tokens,
                now=now,
            )
            assert await counters.settle(s) == await model.settle(s)


async def test_a_free_call_reserves_and_settles_nothing(counters: Any) -> None:
    """An unpriced model a budget lets through: a zero reservation (Redis refuses "-0")."""
    line = budget(scope(), 1000)
    free = ask(
        "z1", budgets=(line,), slots=(SlotLine(line.scope, LABEL, 1),), input_pusd=0, out_pusd=0
    )
    outcome = await counters.admit(free)
    assert outcome.ok and outcome.cost == 0
    assert await counters.settle(settle(free, 0, 0, 0)) == [(0, 0)]
    assert await counters.sweep(T0 + LEASE_S + 1) == 0
    assert (
        await counters.admit(ask("z2", budgets=(line,), slots=(SlotLine(line.scope, LABEL, 1),)))
    ).ok


async def test_combined_operations_decide_as_if_one_at_a_time(counters: Any) -> None:
    """Admissions and settlements arriving together (the SQL backend runs them in one
    transaction) decide exactly as the same sequence applied one by one."""
    if counters.kind != "sql":
        return  # the others run each operation alone
    model = MemoryCounters()
    rng = random.Random(7)
    sc = scope()
    lines = (budget(sc, 40_000), budget(sc, 90_000, "monthly"))
    rates = (RateLine(sc, LABEL, "requests", 30), RateLine(sc, LABEL, "tokens", 9000))
    slots = (SlotLine(sc, LABEL, 6),)
    live: list[tuple[Ask, Any]] = []
    now = T0
    for round_ in range(12):
        now += rng.uniform(0, 4)
        ops: list[Any] = []
        for i in range(rng.randint(1, 12)):
            if live and rng.random() < 0.4:
                done, outcome = live.pop(rng.randrange(len(live)))
                ops.append(
                    settle(
                        done,
                        0,
                        outcome.cost,
                        rng.randint(0, outcome.cost),
                        rng.randint(0, outcome.tokens),
                        outcome.tokens,
                        now=now,
                    )
                )
            else:
                ops.append(
                    ask(
                        f"c{round_}-{i}",
                        now=now,
                        budgets=lines,
                        rates=rates,
                        slots=slots,
                        input_pusd=rng.randint(0, 3000),
                        out_pusd=rng.randint(0, 40),
                        max_out=rng.randint(0, 400),
                        min_out=rng.randint(0, 64),
                        tokens=rng.randint(1, 900),
                    )
                )
        got = await asyncio.gather(
            *(counters.admit(op) if isinstance(op, Ask) else counters.settle(op) for op in ops)
        )
        for op, result in zip(ops, got, strict=True):
            if isinstance(op, Ask):
                want = await model.admit(op)
                assert (result.ok, result.reason, result.cost, result.budgets) == (
                    want.ok,
                    want.reason,
                    want.cost,
                    want.budgets,
                ), op.rid
                if result.ok:
                    live.append((op, result))
            else:
                assert result == await model.settle(op), op.rid
    assert await counters.read(lines, rates, now) == await model.read(lines, rates, now)


async def test_sqlite_waits_for_another_writer_without_blocking_the_loop(
    tmp_path: Any,
) -> None:
    """Another process holding SQLite's write lock: the admission waits (async, then in a
    worker thread) and succeeds once it is released; the event loop keeps running."""
    import sqlite3
    import threading

    from gateway.counters.sql import SqlCounters
    from gateway.store import Store

    path = tmp_path / "busy.db"
    store = Store.open(f"sqlite:///{path}")
    counters = SqlCounters(store)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    line = budget(scope(), 10_000)
    outcome = await counters.admit(ask("w1", budgets=(line,)))
    ticker.cancel()
    assert outcome.ok and outcome.budgets == [(0, 1100)]
    assert ticks >= 15  # the loop ran all along (0.3 s at 10 ms a tick, loosely)
    await counters.close()
    other.close()
    store.close()


def test_settlements_queued_before_a_rebuild_are_dropped_only_if_the_ledger_had_them() -> None:
    """Redis came back empty and was rebuilt from the ledger read at `read_at`: a queued
    settlement of a call that ended before is in the rebuilt spend (dropped); one that
    ended after (this replica had not seen the rebuild yet) is not, and must be applied."""
    from gateway.admission.runtime import Admission, _Queued

    a = ask("e1", budgets=(budget(scope(), 10_000),))
    new = f"beef@{T0 + 5!r}"

    def queued(ended: float, epoch: str | None) -> _Queued:
        return _Queued(settle(a, 0, 1100, 500, now=ended), epoch)

    assert Admission._stale(queued(T0 + 4, "old@1.0"), new)
    assert not Admission._stale(queued(T0 + 6, "old@1.0"), new)
    assert not Admission._stale(queued(T0 + 4, new), new)  # this life: always applied
    assert not Admission._stale(queued(T0 + 4, None), new)
