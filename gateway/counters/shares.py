"""Per-process shares of the shared counters ("quota leasing", as in Envoy's rate-limit
quota or Google's Doorman): while a line is far from its limit, this process holds a
share of it, reserved in the shared counters (SQL or Redis) as an ordinary reservation,
and admits and settles its calls against that share in memory, with no round trip.

- A budget share is a slice of the budget, reserved like a call's worst case. A call
  drawn on it reserves its worst case in the slice and settles its actual cost into it.
  The shared spent + reserved is therefore never below the truth, on any number of
  processes; the sync (gateway.counters.share_sync) moves the slices' spend to `spent`,
  so after a sync with no call in flight the shared `spent` is the ledger's sum, exactly.
- A rate share is a block of requests or tokens counted in the current bucket when
  taken, usable only during that bucket: every call is counted in the bucket it was
  admitted in, as on the exact path, so the window's bound holds unchanged.
- A concurrency share is a block of slots, each an ordinary slot reservation.

Shares are taken and kept only far from the limit (gateway.counters.sizing); near it, or
when a call does not fit its share, the call takes the exact path, on the shared
counters alone. Share reservations carry a short lease (SHARE_LEASE_S), renewed while
held, so a dead process's shares are swept soon after it dies. Settlements the sync
cannot deliver go to the caller's queue (`unsettled`), like a call's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence

from gateway.counters import share_sync, share_views
from gateway.counters.base import Counters
from gateway.counters.logic import bucket
from gateway.counters.plan import (
    BUCKET_S,
    BUCKETS,
    Ask,
    BudgetLine,
    Outcome,
    RateLine,
    Settlement,
    SlotLine,
)
from gateway.counters.share_state import Line, Local, Slice, Slots
from gateway.counters.sizing import share_size

log = logging.getLogger("gateway.admission")

WAKE_GAP_S = 0.02  # a share running low wakes the sync at most this often besides its ticks


class Shares:
    def __init__(
        self,
        counters: Counters,
        unsettled: Callable[[Settlement], None],
        note: Callable[[Sequence[BudgetLine], Sequence[tuple[int, int]]], None],
        down: Callable[[str], None] = lambda why: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = counters
        self.clock = clock
        self.unsettled = unsettled
        self.down = down  # the counters did not answer a sync: the caller stops using shares
        self._note = note
        self.budgets: dict[str, Line] = {}
        self.rates: dict[str, Line] = {}
        self.slots: dict[str, Slots] = {}
        self.calls: dict[str, Local] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._woken: asyncio.Task[None] | None = None
        self._last_wake = 0.0
        self._refill = False  # the last miss is one the sync under way can serve

    # -- the hot path: no I/O ------------------------------------------------------------

    def admit(self, ask: Ask) -> Outcome | None:
        """The call admitted from this process's shares, or None: take the exact path (and
        the next sync takes the shares it lacked, where the rule allows). Written for the
        hit, which is nearly every call: the first line without room hands over to _miss."""
        now = ask.now
        cost = ask.input_pusd + ask.out_pusd * ask.max_out
        tokens = ask.input_tokens + ask.max_out * ask.out_factor
        table = self.budgets
        budget_shares: list[Line] = []
        for line in ask.budgets:
            share = table.get(line.key)
            if share is None or share.line.limit != line.limit:
                return self._miss(ask, cost, tokens)
            s = share.current
            if s is None or s.size - s.used < cost:
                return self._miss(ask, cost, tokens)
            budget_shares.append(share)
        rate_shares: list[Line] = []
        if ask.rates:
            cur = math.floor(now / BUCKET_S)
            table = self.rates
            for rline in ask.rates:
                share = table.get(rline.key)
                if share is None or share.line.limit != rline.limit:
                    return self._miss(ask, cost, tokens)
                s = share.current
                if (
                    s is None
                    or s.bucket != cur
                    or s.size - s.used < (1 if rline.kind == "requests" else tokens)
                ):
                    return self._miss(ask, cost, tokens)
                rate_shares.append(share)
        slots: list[Slots] = []
        for sline in ask.slots:
            held = self.slots.get(sline.scope)
            if held is None or not held.open or held.busy >= len(held.rids):
                return self._miss(ask, cost, tokens)
            slots.append(held)
        # Every line has room: draw on them all (each share's `current` checked above).
        drawn: list[Slice] = []
        for share in budget_shares:
            d: Slice = share.current  # type: ignore[assignment]
            d.used += cost
            d.calls += 1
            share.last_use = now
            if cost > share.need:
                share.need = cost
            drawn.append(d)
            if d.size - d.used < d.size // 4:
                self._want(self.budgets, share.line, 0)  # running low: the next slice, early
        drawn_tokens: list[Slice] = []
        seen: list[tuple[int, float]] = []
        if rate_shares:
            window_end = (cur + BUCKETS) * BUCKET_S - now  # when the newest bucket ages out
            for rline, share in zip(ask.rates, rate_shares, strict=True):
                r: Slice = share.current  # type: ignore[assignment]
                if rline.kind == "requests":
                    amount = 1
                else:
                    amount = tokens
                    r.calls += 1
                    drawn_tokens.append(r)
                r.used += amount
                share.last_use = now
                if amount > share.need:
                    share.need = amount
                seen.append((r.base + r.used, window_end))
                if r.size - r.used < r.size // 4:
                    self._want(self.rates, rline, 0)  # running low: the next block, early
        for held in slots:
            held.busy += 1
            held.last_use = now
        self.calls[ask.rid] = Local(drawn, drawn_tokens, slots)
        # The budgets' values are not reported: a call admitted here is never refused,
        # and the gauges are set by the sync (Shares.seen).
        return Outcome(True, None, 0, None, ask.max_out, cost, tokens, [], seen)

    def _miss(self, ask: Ask, cost: int, tokens: int) -> Outcome | None:
        """The lines this call found no room on: wanted from the next sync."""
        now = ask.now
        missing: list[tuple[dict[str, Line], BudgetLine | RateLine, int]] = []
        for line in ask.budgets:
            share = self.budgets.get(line.key)
            s = share.current if share is not None else None
            if (
                share is None
                or s is None
                or s.size - s.used < cost
                or share.line.limit != line.limit
            ):
                missing.append((self.budgets, line, cost))
        cur = bucket(now)
        for rline in ask.rates:
            amount = 1 if rline.kind == "requests" else tokens
            share = self.rates.get(rline.key)
            s = share.current if share is not None else None
            if (
                share is None
                or s is None
                or s.bucket != cur
                or s.size - s.used < amount
                or share.line.limit != rline.limit
            ):
                missing.append((self.rates, rline, amount))
        missing_slots = []
        for sline in ask.slots:
            held = self.slots.get(sline.scope)
            if held is None or not held.open or held.busy >= len(held.rids):
                missing_slots.append(sline)
        self._short(missing, missing_slots)
        return None

    def refill(self) -> asyncio.Task[None] | None:
        """The sync under way that takes the shares the last call found missing, when one
        is (None: none is, or a missing share cannot be had near its limit). A call may
        wait for it rather than take the exact path: at a rate bucket's start every
        process's blocks end at once, and a crowd of calls on the counters would delay
        the very sync that brings the next blocks."""
        if self._refill and self._woken is not None and not self._woken.done():
            return self._woken
        return None

    def settle(self, settlement: Settlement) -> bool:
        """Settle a call admitted from the shares, in memory; False: not one of them."""
        return self.settle_call(
            settlement.rid,
            settlement.cost,
            settlement.tokens,
            settlement.actual_pusd,
            settlement.actual_tokens,
        )

    def settle_call(
        self, rid: str, cost: int, tokens: int, actual_pusd: int, actual_tokens: int
    ) -> bool:
        """Settlement's arithmetic with no Settlement built: what admit() gave the call
        (`cost`, `tokens`) replaced by what it used; False: not admitted here."""
        local = self.calls.pop(rid, None)
        if local is None:
            return False
        for s in local.budgets:
            s.used += actual_pusd - cost
            s.spent += actual_pusd
            s.calls -= 1
        delta = actual_tokens - tokens
        for s in local.tokens:
            s.used += delta
            s.calls -= 1
        for held in local.slots:
            held.busy -= 1
        return True

    def learn(self, ask: Ask, outcome: Outcome) -> None:
        """What an exact-path admission saw of the lines this process wants shares of."""
        for line, values in zip(ask.budgets, outcome.budgets, strict=False):
            share = self.budgets.get(line.key)
            if share is not None:
                share.free = line.limit - values[0] - values[1]
        for rline, (used, _reset) in zip(ask.rates, outcome.rates, strict=False):
            share = self.rates.get(rline.key)
            if share is not None:
                share.free = rline.limit - used
        if outcome.reason == "parallel":
            held = self.slots.get(ask.slots[outcome.line].scope)
            if held is not None:  # at the limit: this process's idle slots go back
                held.cooldown_until = ask.now + share_sync.COOLDOWN_S
                held.open, held.blocked = False, True

    def _short(
        self,
        missing: list[tuple[dict[str, Line], BudgetLine | RateLine, int]],
        missing_slots: list[SlotLine],
    ) -> None:
        """Ask the next sync for the shares a call lacked; when one of them cannot be had
        (too near its limit, or too small a limit), only for that one: the others would
        not let a call through alone."""
        blocked = [
            m for m in missing if (share := m[0].get(m[1].key)) is not None and share.blocked
        ]
        blocked_slots = [
            sline
            for sline in missing_slots
            if (held := self.slots.get(sline.scope)) and held.blocked
        ]
        # Worth waiting for the sync only where it will surely bring a share: lines held
        # before and still far from their limit (a line never seen is not known to be).
        self._refill = not missing_slots and all(
            (share := table.get(line.key)) is not None
            and share.line.limit == line.limit
            and share.free is not None
            and share_size(share.free, max(need, share.need)) > 0
            for table, line, need in missing
        )
        if blocked or blocked_slots:
            missing, missing_slots = blocked, blocked_slots
        for table, line, need in missing:
            self._want(table, line, need)
        for sline in missing_slots:
            held = self.slots.get(sline.scope)
            if held is None:
                held = self.slots[sline.scope] = Slots(sline)
            held.wanted = True
            self._wake()

    def _want(self, table: dict[str, Line], line: BudgetLine | RateLine, need: int) -> None:
        share = table.get(line.key)
        if share is None:
            share = table[line.key] = Line(line)
        elif share.line.limit != line.limit:
            share.line, share.free = line, None  # the limit changed: what was seen is stale
            if share.current is not None:
                share.current.open, share.current = False, None
        share.need = max(share.need, need)
        share.wanted = True
        self._wake()

    def _wake(self) -> None:
        if self._woken is not None and not self._woken.done():
            return
        now = time.monotonic()
        if now - self._last_wake < WAKE_GAP_S:
            return  # the next tick, at most SYNC_S away
        self._last_wake = now
        self._woken = asyncio.get_running_loop().create_task(self.sync(), name="gateway-shares")

    # -- views -------------------------------------------------------------------------

    def adjust(
        self,
        budgets: Sequence[BudgetLine],
        rates: Sequence[RateLine],
        values: tuple[list[tuple[int, int]], list[tuple[int, float]]],
        now: float,
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        """A read of the shared counters as this process knows them (share_views.adjust)."""
        return share_views.adjust(self.budgets, self.rates, budgets, rates, values, now)

    # -- the sync: off the hot path ----------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gateway-shares-sync")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._next_sync_s())
            try:
                await self.sync()
            except Exception:  # the loop must outlive one bad tick
                log.exception("syncing the counters' shares failed")

    def _next_sync_s(self) -> float:
        """SYNC_S, or less: just past the start of the next rate bucket while rate blocks
        are held, so the next blocks are taken as the last ones end."""
        if not self.rates:
            return share_sync.SYNC_S
        now = self.clock()
        return min(share_sync.SYNC_S, (math.floor(now / BUCKET_S) + 1) * BUCKET_S - now + 0.001)

    async def close(self) -> None:
        """Give every share back (calls still in flight keep theirs)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._woken is not None:
            await asyncio.gather(self._woken, return_exceptions=True)
        await self.sync(closing=True)

    async def sync(self, closing: bool = False) -> None:
        """Settle, shrink, renew and take shares (gateway.counters.share_sync)."""
        async with self._lock:
            now = self.clock()
            await share_sync.run(self, share_sync.plan(self, now, closing), now)

    def suspend(self) -> None:
        """The counters are away: no call is drawn on a share until new ones are taken
        (a Redis that comes back empty holds none of the old)."""
        for table in (self.budgets, self.rates):
            for share in table.values():
                if share.current is not None:
                    share.current.open, share.current = False, None
        for held in self.slots.values():
            held.open = False

    def held(self) -> bool:
        return (
            any(share.slices for share in self.budgets.values())
            or any(share.slices for share in self.rates.values())
            or any(held.rids for held in self.slots.values())
        )

    def seen(self, share: Line, values: tuple[int, int]) -> None:
        """What the counters answered for a budget line this process holds shares of."""
        assert isinstance(share.line, BudgetLine)
        share.seen = values
        share.free = share.line.limit - values[0] - values[1]
        self._note([share.line], [share_views.view(share)])
