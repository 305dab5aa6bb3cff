"""Admission's counters in a running gateway: which backend, what happens when it is away,
and the background work (settlements queued while away, the sweep of dead processes'
reservations, rebuilding an emptied Redis from the ledger).

- No GATEWAY_REDIS_URL: the counters live in the store's database (SQLite on one host,
  or PostgreSQL). If it does not answer, calls of limited keys are refused (503).
- GATEWAY_REDIS_URL: the counters live in Redis/Valkey. If Redis does not answer, the
  deployment's GATEWAY_REDIS_FAILURE decides: `closed` (default) refuses calls of
  limited keys with 503 counters_unavailable; `open` admits them by this replica's own
  in-memory counters (each replica then holds every limit alone, starting from the
  last spend Redis reported), counted in gateway_counters_unshared_admissions_total,
  with gateway_counters_degraded at 1 and an error logged every 10 s.
- Either way, settlements that cannot be written wait in memory (up to QUEUE_BOUND) and
  are written when the counters answer again; calls are never lost from the ledger.
- Far from their limits, calls are admitted and settled from this process's shares of
  the shared counters, in memory (gateway.counters.shares); near them, and while the
  counters are away, on the counters themselves as described here.
- Redis back but empty (restarted without persistence): one replica rebuilds every
  budget's spend from the ledger (after flushing its own queue and waiting for the
  others' flushes), then the counters are shared again. Settlements queued before the
  rebuild are then dropped: the ledger they were rebuilt from holds those calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.counters import metrics
from gateway.counters.base import Counters, CountersUnavailable
from gateway.counters.memory import MemoryCounters
from gateway.counters.plan import Ask, BudgetLine, Outcome, RateLine, Settlement
from gateway.counters.shares import Shares
from gateway.store.plain import PICO

log = logging.getLogger("gateway.admission")

FAILURE_MODES = ("closed", "open")
QUEUE_BOUND = 10_000
TICK_S = 0.25
SWEEP_S = 10.0
GAUGES_S = 1.0
LOG_EVERY_S = 10.0


@dataclass(slots=True)
class _Queued:
    settlement: Settlement
    epoch: str | None


class Admission:
    def __init__(
        self,
        primary: Counters,
        failure: str = "closed",
        flush_ledger: Callable[[], Any] | None = None,
        budget_lines: Callable[[], list[BudgetLine]] | None = None,
        ledger_spend: Callable[[Sequence[BudgetLine]], list[int]] | None = None,
        flush_wait_s: float = 1.1,
        shares: bool = True,
    ) -> None:
        self.primary = primary
        self.shared = primary.kind == "redis"
        self.failure = failure
        self.local: MemoryCounters | None = (
            MemoryCounters() if self.shared and failure == "open" else None
        )
        self.degraded = False
        self.epoch: str | None = None
        self.queue: deque[_Queued] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.last_spent: dict[str, int] = {}
        self._flush_ledger = flush_ledger
        self._budget_lines = budget_lines
        self._ledger_spend = ledger_spend
        self._flush_wait_s = flush_wait_s
        self._loop_task: asyncio.Task[None] | None = None
        self._last_log = 0.0
        self._last_sweep = time.monotonic()
        self._last_gauges = time.monotonic()
        # Budget lines noted since the last gauge refresh, and in the one before.
        self._touched: dict[str, BudgetLine] = {}
        self._touched_before: dict[str, BudgetLine] = {}
        # In-process counters need no shares: they are this process's alone.
        self.shares: Shares | None = (
            Shares(primary, self._enqueue, self._note, self._down)
            if shares and primary.kind in ("sql", "redis")
            else None
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, wait_s: float = 10.0) -> None:
        """Find the counters before serving; wait (up to `wait_s`) for another replica
        that is rebuilding them, so a fresh start does not refuse its first calls."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                await self._recover()
            except CountersUnavailable as exc:
                self._down(str(exc))
                break
            if self.epoch is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)
        if self.epoch is None:
            self._down("not rebuilt yet")
        self._loop_task = asyncio.create_task(self._loop(), name="gateway-admission")
        if self.shares is not None:
            self.shares.start()

    async def stop(self) -> None:
        if self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self.shares is not None:
            await self.shares.close()  # what they spent reaches the counters (or the queue)
        if self.queue:
            try:
                await self._recover()
            except CountersUnavailable:
                log.error(
                    "stopping with %d settlements the counters did not take (the ledger has them)",
                    len(self.queue),
                )
        await self.primary.close()

    # -- the hot path ------------------------------------------------------------------

    def admit_now(self, ask: Ask) -> Outcome | None:
        """The call admitted from this process's shares, with no I/O; None: await admit()."""
        if self.shares is None or self.degraded:
            return None
        outcome = self.shares.admit(ask)
        if outcome is not None:
            metrics.local_admissions.inc()
        return outcome

    def refill(self) -> asyncio.Task[None] | None:
        """The sync under way that brings the shares admit_now() just found missing."""
        return None if self.shares is None or self.degraded else self.shares.refill()

    def settle_now(
        self, rid: str, cost: int, tokens: int, actual_pusd: int, actual_tokens: int
    ) -> bool:
        """A call admitted by admit_now() settled into its shares; False: settle_later()."""
        if self.shares is None or not self.shares.settle_call(
            rid, cost, tokens, actual_pusd, actual_tokens
        ):
            return False
        metrics.reservations_held.dec()
        return True

    async def admit(self, ask: Ask) -> Outcome:
        if not self.degraded:
            try:
                outcome = await self.primary.admit(ask)
            except CountersUnavailable as exc:
                self._down(str(exc))
            else:
                self._note(ask.budgets, outcome.budgets)
                if self.shares is not None:
                    self.shares.learn(ask, outcome)
                return outcome
        if self.local is None:
            self._complain()
            raise CountersUnavailable("the counters are unavailable")
        for line in ask.budgets:
            self.local.seed(line.key, self.last_spent.get(line.key, 0))
        outcome = await self.local.admit(ask)
        if outcome.ok:
            metrics.unshared_admissions_total.inc()
        self._complain()
        return outcome

    def settle_later(self, settlement: Settlement) -> None:
        """From a call's sink (sync, on the event loop): settle in the background."""
        metrics.reservations_held.dec()
        if self.shares is not None and self.shares.settle(settlement):
            return  # admitted from a share: settled into it, the next sync carries it on
        task = asyncio.get_running_loop().create_task(self._settle(settlement))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, settlement: Settlement) -> None:
        if self.local is not None:
            await self.local.settle(settlement)
        if self.degraded:
            self._enqueue(settlement)
            return
        try:
            values = await self.primary.settle(settlement)
        except CountersUnavailable as exc:
            self._down(str(exc))
            self._enqueue(settlement)
        else:
            self._note(settlement.budgets, values)

    async def read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        if not self.degraded:
            try:
                values = await self.primary.read(budgets, rates, now)
            except CountersUnavailable as exc:
                self._down(str(exc))
            else:
                if self.shares is not None:
                    return self.shares.adjust(budgets, rates, values, now)
                return values
        if self.local is None:
            raise CountersUnavailable("the counters are unavailable")
        return await self.local.read(budgets, rates, now)

    # -- bookkeeping -------------------------------------------------------------------

    def _note(
        self, lines: Sequence[BudgetLine], values: Sequence[tuple[int, int]], touch: bool = True
    ) -> None:
        for line, (spent, reserved) in zip(lines, values, strict=False):
            if touch:
                self._touched[line.key] = line
            if spent < self.last_spent.get(line.key, 0):
                continue  # an older answer resumed after a newer one: spend only grows in a period
            self.last_spent[line.key] = spent
            labels = (line.label.name, "") if line.label.kind == "key" else ("", line.label.name)
            metrics.budget_spent_usd.labels(*labels, line.period).set(spent / PICO)
            metrics.budget_remaining_usd.labels(*labels, line.period).set(
                max(0, line.limit - spent - reserved) / PICO
            )

    def _enqueue(self, settlement: Settlement) -> None:
        if len(self.queue) >= QUEUE_BOUND:
            metrics.settlements_dropped_total.labels("queue_full").inc()
            return
        self.queue.append(_Queued(settlement, self.epoch))
        metrics.settlements_queued.set(len(self.queue))

    def _down(self, why: str) -> None:
        if self.shares is not None:
            self.shares.suspend()
        if not self.degraded:
            self.degraded = True
            metrics.counters_degraded.set(1)
            mode = (
                "admitting calls by this replica's own counters"
                if self.local is not None
                else "refusing calls of keys with limits (503)"
            )
            log.error(
                "the %s counters are unavailable (%s): %s until they answer",
                self.primary.kind,
                why,
                mode,
            )
            self._last_log = time.monotonic()

    def _complain(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.error(
                "the %s counters are still unavailable; %d settlements waiting",
                self.primary.kind,
                len(self.queue),
            )

    # -- recovery ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                if self.degraded or self.queue:
                    await self._recover()
                if time.monotonic() - self._last_gauges >= GAUGES_S and not self.degraded:
                    self._last_gauges = time.monotonic()
                    await self._refresh_gauges()
                if time.monotonic() - self._last_sweep >= SWEEP_S and not self.degraded:
                    self._last_sweep = time.monotonic()
                    swept = await self.primary.sweep(time.time())
                    if swept:
                        log.warning(
                            "released %d reservations whose process ended without settling", swept
                        )
            except CountersUnavailable:
                pass  # still away: the next tick tries again
            except Exception:  # the loop must outlive one bad tick
                log.exception("admission's background work failed")

    async def _refresh_gauges(self) -> None:
        """Each answer sets the budget gauges to what that call saw: calls of other
        processes, and answers that finish out of order, leave them behind the counters.
        Once a second the lines touched lately are read afresh (two rounds after the last
        touch, so the gauges end at the counters' values once calls stop)."""
        lines = {**self._touched_before, **self._touched}
        self._touched_before, self._touched = self._touched, {}
        if lines:
            budgets = list(lines.values())
            now = time.time()
            read = await self.primary.read(budgets, [], now)
            values = self.shares.adjust(budgets, [], read, now)[0] if self.shares else read[0]
            self._note(budgets, values, touch=False)  # not a touch: it does not renew itself

    async def _recover(self) -> None:
        epoch = await self._epoch()
        if epoch is None:
            return  # another replica is rebuilding; wait for it
        if self.epoch is not None and epoch != self.epoch:
            stale = [q for q in self.queue if self._stale(q, epoch)]
            if stale:
                metrics.settlements_dropped_total.labels("rebuilt_from_ledger").inc(len(stale))
                self.queue = deque(q for q in self.queue if not self._stale(q, epoch))
        self.epoch = epoch
        while self.queue:
            queued = self.queue[0]
            if self._stale(queued, epoch):
                self.queue.popleft()
                metrics.settlements_dropped_total.labels("rebuilt_from_ledger").inc()
                continue
            values = await self.primary.settle(queued.settlement)
            self.queue.popleft()
            self._note(queued.settlement.budgets, values)
            metrics.settlements_queued.set(len(self.queue))
        metrics.settlements_queued.set(0)
        if self.degraded:
            self.degraded = False
            metrics.counters_degraded.set(0)
            if self.local is not None:
                self.local = MemoryCounters()
            log.warning("the %s counters answer again: limits are shared again", self.primary.kind)

    @staticmethod
    def _stale(queued: _Queued, epoch: str) -> bool:
        """Queued in an earlier life of the counters, for a call that ended before the
        rebuild read the ledger: the rebuilt counters hold it already. A call that ended
        after that read (this replica had not yet seen the rebuild) is not in them."""
        if queued.epoch in (None, epoch):
            return False
        _, _, read_at = epoch.partition("@")
        try:
            return queued.settlement.now <= float(read_at)
        except ValueError:
            return True  # an epoch without the time: everything before it is in the ledger

    async def _epoch(self) -> str | None:
        epoch_of = getattr(self.primary, "epoch", None)
        if epoch_of is None:
            return self.primary.kind  # the SQL store: one life, nothing to rebuild
        epoch = await epoch_of()
        if epoch is not None:
            return str(epoch)
        return await self._rebuild()

    async def _rebuild(self) -> str | None:
        primary: Any = self.primary
        if not await primary.claim_seeding():
            return None
        log.warning(
            "Redis has no counters (it restarted empty): rebuilding the budgets from the ledger"
        )
        if self._flush_ledger is not None:
            await asyncio.to_thread(self._flush_ledger)
        await asyncio.sleep(self._flush_wait_s)  # the other replicas' ledger flushes
        lines = {line.key: line for line in (self._budget_lines() if self._budget_lines else [])}
        read_at = time.time()
        values = (
            await asyncio.to_thread(self._ledger_spend, list(lines.values()))
            if self._ledger_spend
            else []
        )
        await primary.seed(list(zip(lines.values(), values, strict=True)), read_at)
        log.warning("rebuilt %d budget counters from the ledger", len(lines))
        epoch = await primary.epoch()
        return None if epoch is None else str(epoch)
