"""The sync of a process's shares (gateway.counters.shares), off the hot path: every
SYNC_S, when a share runs low, and at shutdown.

Per budget line: the open slice is replaced by a fresh one when it has spent (so its
spend reaches the shared `spent` within a sync) or runs low, serving calls until the
fresh one is there; it is closed at once when it goes unused for IDLE_S or the line
comes near its limit. A closed slice with no call in flight is settled (its spend to
`spent`, its reservation released), one with calls in flight shrinks to their worst
cases (one atomic settlement that keeps that much reserved), so near the limit no
unused share stays held. Per rate line: a block is closed at the end of its bucket (or
replaced when low; closed when idle or near the limit) and given back at once, counted
as what its calls counted; corrections from calls that settle later follow as deltas,
as on the exact path. A fresh share is taken for each line calls wanted one of, where
gateway.counters.sizing allows.

Everything is decided before the first await (the hot path never sees a half-planned
state); the round trips then carry settlements, renewals and takes, in that order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.counters.base import CountersUnavailable
from gateway.counters.logic import bucket
from gateway.counters.plan import Ask, BudgetLine, Outcome, RateLine, Settlement
from gateway.counters.share_state import (
    SHARE_LEASE_S,
    Line,
    Slice,
    Slots,
    give_back,
    give_back_block,
    give_back_slot,
    take,
    take_slots,
)
from gateway.counters.sizing import keeps, share_size, slot_block

if TYPE_CHECKING:
    from gateway.counters.shares import Shares

SYNC_S = 0.2
RENEW_S = 10.0  # a share held this long has its lease renewed (SHARE_LEASE_S ahead)
IDLE_S = 1.0  # a share unused this long is given back
COOLDOWN_S = 10.0  # after a concurrency refusal: no slot block for this long


@dataclass
class Work:
    settles: list[tuple[Line | None, Settlement]] = field(default_factory=list)
    renew: list[str] = field(default_factory=list)
    takes: list[tuple[Line | Slots, list[Ask]]] = field(default_factory=list)


def plan(shares: Shares, now: float, closing: bool) -> Work:
    """Decide this sync's operations and do their bookkeeping, with no await."""
    work = Work()
    for table in (shares.budgets, shares.rates):
        for key, share in list(table.items()):
            if _plan_line(share, now, closing, work):
                del table[key]
    for scope, held in list(shares.slots.items()):
        if _plan_slots(held, now, closing, work):
            del shares.slots[scope]
    return work


def _close_current(share: Line, now: float, closing: bool) -> bool:
    """Close the open share where it must stop at once; True: it is to be replaced by a
    fresh one (it has spent, or runs low), and serves calls until that one is taken."""
    s = share.current
    if s is None:
        return False
    busy = now - share.last_use <= IDLE_S
    if (
        closing
        or not busy
        or (share.free is not None and not keeps(share.free, s.size))
        or (isinstance(share.line, RateLine) and s.bucket != bucket(now))
    ):
        s.open, share.current = False, None
        share.wanted = share.wanted or (busy and not closing)
        return False
    return s.spent > 0 or s.size - s.used < s.size // 4


def _renew(s: Slice, now: float, work: Work) -> None:
    if now - max(s.taken_at, s.renewed_at) >= RENEW_S:
        s.renewed_at = now
        work.renew.append(s.rid)


def _retire(share: Line, s: Slice, now: float, out: list[tuple[Line | None, Settlement]]) -> None:
    """A closed share back to the counters: a budget slice settled once its calls have
    ended, else shrunk to their worst cases; a rate block counted as what its calls
    counted, with later corrections as deltas."""
    line = share.line
    if isinstance(line, BudgetLine):
        if s.calls == 0:
            share.slices.remove(s)
            out.append((share, give_back(line, s, now)))
            return
        keep = s.used - s.spent  # the worst cases of its calls in flight
        if s.spent or keep < s.size:
            out.append((share, give_back(line, s, now, keep)))
            s.size, s.used, s.spent = keep, keep, 0
        return
    if s.sent is None or s.sent != s.used:
        out.append((None, give_back_block(line, s, now)))
        s.sent = s.used
    if s.calls == 0:
        share.slices.remove(s)


def _plan_line(share: Line, now: float, closing: bool, work: Work) -> bool:
    """Plan one line's operations; True: nothing held nor wanted, forget it."""
    rotate = _close_current(share, now, closing)
    line = share.line
    for s in list(share.slices):
        if not s.open:
            _retire(share, s, now, work.settles)
        if isinstance(line, BudgetLine) and s in share.slices:
            _renew(s, now, work)  # a rate block reserves no money and no slot: no lease
    if (rotate or (share.current is None and share.wanted)) and not closing:
        size = share_size(share.free if share.free is not None else line.limit, share.need)
        share.blocked = not size
        if size:
            work.takes.append((share, [take(line, size, now)]))
            share.wanted = False
            return False
        if share.current is not None:  # no fresh share to be had: this one goes back now
            old, share.current = share.current, None
            old.open = False
            _retire(share, old, now, work.settles)
    share.wanted = False
    return not share.slices and share.current is None and now - share.last_use > IDLE_S


def _plan_slots(held: Slots, now: float, closing: bool, work: Work) -> bool:
    if held.open and (closing or now - held.last_use > IDLE_S or now < held.cooldown_until):
        held.open = False
    if held.rids and not held.open and len(held.rids) > held.busy:
        # Slots are alike: those no call holds go back now, the rest as their calls end.
        for rid in held.rids[held.busy :]:
            work.settles.append((None, give_back_slot(held.line, rid, held.taken_at, now)))
        held.rids = held.rids[: held.busy]
    if held.rids and now - held.renewed_at >= RENEW_S:
        work.renew.extend(held.rids)
        held.renewed_at = now
    held.blocked = now < held.cooldown_until or not slot_block(held.line.limit)
    if not held.rids and held.wanted and not closing and not held.blocked:
        work.takes.append((held, take_slots(held.line, slot_block(held.line.limit), now)))
        held.wanted = False
        return False
    held.wanted = False
    return not held.rids and now >= held.cooldown_until and now - held.last_use > IDLE_S


async def run(shares: Shares, work: Work, now: float) -> None:
    try:
        if work.settles:
            await _settle_all(shares, work.settles)
        if work.renew:
            await shares.counters.renew(work.renew, now + SHARE_LEASE_S)
        if work.takes:
            await _take_all(shares, work.takes, now)
        if not (work.settles or work.renew or work.takes) and shares.held():
            # Shares are drawn on with no round trip: this one notices the counters gone.
            await shares.counters.ping()
    except CountersUnavailable as exc:
        try:  # one failure on a connection the server dropped (it restarted) is no outage
            await shares.counters.ping()
        except CountersUnavailable:
            shares.down(str(exc))
            shares.suspend()


async def _settle_all(shares: Shares, settles: list[tuple[Line | None, Settlement]]) -> None:
    results = await asyncio.gather(
        *(shares.counters.settle(settlement) for _, settlement in settles),
        return_exceptions=True,
    )
    away: CountersUnavailable | None = None
    for (share, settlement), result in zip(settles, results, strict=True):
        if isinstance(result, CountersUnavailable):
            shares.unsettled(settlement)  # queued like a call's: written when they answer
            away = result
        elif isinstance(result, BaseException):
            raise result
        elif share is not None and result:
            shares.seen(share, result[0])
    if away is not None:
        raise away


async def _take_all(
    shares: Shares, takes: list[tuple[Line | Slots, list[Ask]]], now: float
) -> None:
    asks = [ask for _, group in takes for ask in group]
    results = await asyncio.gather(
        *(shares.counters.admit(a) for a in asks), return_exceptions=True
    )
    back: list[tuple[Line | None, Settlement]] = []
    i = 0
    for share, group in takes:
        outcomes, i = results[i : i + len(group)], i + len(group)
        if isinstance(share, Slots):
            granted = [
                a.rid
                for a, o in zip(group, outcomes, strict=True)
                if isinstance(o, Outcome) and o.ok
            ]
            if len(granted) == len(group):
                share.rids, share.open = granted, True
                share.taken_at = share.renewed_at = share.last_use = now
            else:  # at the limit (or the counters away): what was got goes back
                share.cooldown_until, share.blocked = now + COOLDOWN_S, True
                back.extend((None, give_back_slot(share.line, rid, now, now)) for rid in granted)
            continue
        [ask], [outcome] = group, outcomes
        if not isinstance(outcome, Outcome) or not outcome.ok:
            share.blocked = True
            if (
                isinstance(outcome, Outcome)
                and isinstance(share.line, BudgetLine)
                and outcome.budgets
            ):
                shares.seen(share, outcome.budgets[0])
            continue
        line = share.line
        if isinstance(line, BudgetLine):
            s = Slice(ask.rid, now, outcome.cost)
            share.slices.append(s)
            shares.seen(share, outcome.budgets[0])
        else:
            size = ask.count if line.kind == "requests" else outcome.tokens
            used = outcome.rates[0][0]
            s = Slice(ask.rid, now, size, base=used - size, bucket=bucket(ask.now))
            share.slices.append(s)
            share.free = line.limit - used
        share.need = 1
        if share.free is not None and keeps(share.free, s.size):
            replaced, share.current, share.last_use = share.current, s, now
            if replaced is not None:  # the share this one replaces: back at once
                replaced.open = False
                _retire(share, replaced, now, back)
            continue
        # Taken just as the line came near its limit: straight back.
        share.blocked, s.open = True, False
        _retire(share, s, now, back)
    if back:
        await _settle_all(shares, back)
    for result in results:
        if isinstance(result, CountersUnavailable):
            raise result
