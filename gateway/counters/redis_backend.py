"""Counters in Redis or Valkey, shared by every replica (GATEWAY_REDIS_URL).

One Lua script per admission (admit.lua) and per settlement (settle.lua), run with
EVALSHA, so each is atomic on the server. The admissions (and the settlements) waiting
at a moment share one pipelined round trip (gateway.counters.combine): a call alone
costs one round trip, and under load one round trip serves many. Every key carries the `{gw}` hash tag: one slot, so
the scripts also run on a Redis Cluster (on one shard).

A Redis that lost its data (restarted without persistence) has no `{gw}:seeded` marker;
until one replica has rebuilt the budgets from the ledger (`seed`) both scripts answer
"unseeded" and the gateway treats the counters as unavailable.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from gateway.counters import metrics
from gateway.counters.base import CountersUnavailable
from gateway.counters.combine import Combiner
from gateway.counters.logic import bucket, reset_s
from gateway.counters.plan import (
    BUCKET_S,
    BUCKETS,
    Ask,
    BudgetLine,
    Outcome,
    RateLine,
    Settlement,
)

PREFIX = "{gw}:"
SEEDED = PREFIX + "seeded"
LEASES = PREFIX + "leases"
_HERE = Path(__file__).parent

_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #KEYS do
  redis.call('HSET', KEYS[i], 'spent', ARGV[i], 'reserved', '0')
  local ttl = tonumber(ARGV[#KEYS + i - 1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def budget_key(line: BudgetLine) -> str:
    return f"{PREFIX}b:{line.key}"


def bucket_key(line: RateLine, at: int) -> str:
    return f"{PREFIX}r:{line.key}:{at}"


def slot_key(scope: str) -> str:
    return f"{PREFIX}s:{scope}"


def lease_key(rid: str) -> str:
    return f"{PREFIX}l:{rid}"


class RedisCounters:
    kind = "redis"

    def __init__(self, url: str, timeout_s: float = 0.5) -> None:
        self.url = url
        self.client: Any = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        self._admit = self.client.register_script((_HERE / "admit.lua").read_text())
        self._settle = self.client.register_script((_HERE / "settle.lua").read_text())
        self._sweep = self.client.register_script((_HERE / "sweep.lua").read_text())
        self._renew = self.client.register_script((_HERE / "renew.lua").read_text())
        self._seed = self.client.register_script(_SEED)
        self._admits: Combiner[Ask] = Combiner(self._admit_all, "gateway-redis-admit")
        self._settles: Combiner[Settlement] = Combiner(self._settle_all, "gateway-redis-settle")

    async def _run(self, op: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        started = time.perf_counter()
        try:
            return await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise CountersUnavailable(f"Redis at {self.describe()}: {exc}") from None
        finally:
            metrics.redis_seconds.labels(op).observe(time.perf_counter() - started)

    def describe(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    async def admit(self, ask: Ask) -> Outcome:
        result: Outcome = await self._admits.submit(ask)
        return result

    async def settle(self, settlement: Settlement) -> list[tuple[int, int]]:
        result: list[tuple[int, int]] = await self._settles.submit(settlement)
        return result

    async def _pipeline(
        self, op: str, script: Any, calls: list[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        """One EVALSHA per call, all in one round trip (not a transaction: each script is
        atomic on its own, as separate calls would be). A Redis that lost its scripts
        (restarted) gets them again and the calls it refused are sent once more."""
        started = time.perf_counter()
        try:
            replies: list[Any] = [None] * len(calls)
            todo = list(range(len(calls)))
            for attempt in range(2):
                async with self.client.pipeline(transaction=False) as pipe:
                    for i in todo:
                        keys, args = calls[i]
                        pipe.evalsha(script.sha, len(keys), *keys, *args)
                    answers = await pipe.execute(raise_on_error=False)
                missing = []
                for i, answer in zip(todo, answers, strict=True):
                    if isinstance(answer, NoScriptError) and attempt == 0:
                        missing.append(i)
                    elif isinstance(answer, Exception):
                        # This call only: the others in the pipeline did run.
                        replies[i] = CountersUnavailable(f"Redis at {self.describe()}: {answer}")
                    else:
                        replies[i] = answer
                if not missing:
                    break
                for each in (self._admit, self._settle, self._sweep, self._seed, self._renew):
                    await self.client.script_load(each.script)
                todo = missing
            return replies
        except (RedisError, OSError) as exc:
            raise CountersUnavailable(f"Redis at {self.describe()}: {exc}") from None
        finally:
            metrics.redis_seconds.labels(op).observe(time.perf_counter() - started)

    async def _admit_all(self, asks: list[Ask]) -> list[Outcome | CountersUnavailable]:
        replies = await self._pipeline("admit", self._admit, [_admit_call(a) for a in asks])
        return [
            reply if isinstance(reply, CountersUnavailable) else _outcome(ask, _texts(reply))
            for ask, reply in zip(asks, replies, strict=True)
        ]

    async def _settle_all(
        self, settlements: list[Settlement]
    ) -> list[list[tuple[int, int]] | CountersUnavailable]:
        replies = await self._pipeline(
            "settle", self._settle, [_settle_call(s) for s in settlements]
        )
        out: list[list[tuple[int, int]] | CountersUnavailable] = []
        for s, reply in zip(settlements, replies, strict=True):
            if isinstance(reply, CountersUnavailable):
                out.append(reply)
                continue
            texts = _texts(reply)
            if texts[0] == "unseeded":
                out.append(CountersUnavailable("Redis has no counters yet (restarted empty)"))
            else:
                out.append(
                    [(int(texts[1 + 2 * i]), int(texts[2 + 2 * i])) for i in range(len(s.budgets))]
                )
        return out

    async def read(
        self, budgets: Sequence[BudgetLine], rates: Sequence[RateLine], now: float
    ) -> tuple[list[tuple[int, int]], list[tuple[int, float]]]:
        cur = bucket(now)
        started = time.perf_counter()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for line in budgets:
                    pipe.hmget(budget_key(line), "spent", "reserved")
                for rate in rates:
                    pipe.mget([bucket_key(rate, b) for b in range(cur - BUCKETS + 1, cur + 1)])
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise CountersUnavailable(f"Redis at {self.describe()}: {exc}") from None
        finally:
            metrics.redis_seconds.labels("read").observe(time.perf_counter() - started)
        spent = [(int(r[0] or 0), int(r[1] or 0)) for r in replies[: len(budgets)]]
        windows = [[int(v or 0) for v in r] for r in replies[len(budgets) :]]
        return spent, [(sum(w), reset_s(now, w)) for w in windows]

    async def sweep(self, now: float) -> int:
        return int(await self._run("sweep", self._sweep, [LEASES], [repr(now), 200, PREFIX]))

    async def renew(self, rids: Sequence[str], until: float) -> int:
        if not rids:
            return 0
        keys = [LEASES, *(lease_key(rid) for rid in rids)]
        args = [repr(until), max(60, math.ceil(until - time.time()) + 60), *rids]
        return int(await self._run("renew", self._renew, keys, args))

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise CountersUnavailable(f"Redis at {self.describe()}: {exc}") from None

    async def epoch(self) -> str | None:
        """The marker of the counters' current life (None: Redis lost them); raises
        CountersUnavailable when Redis does not answer."""
        try:
            value = await self.client.get(SEEDED)
        except (RedisError, OSError) as exc:
            raise CountersUnavailable(f"Redis at {self.describe()}: {exc}") from None
        return value.decode() if isinstance(value, bytes) else value

    async def claim_seeding(self, hold_s: int = 30) -> bool:
        try:
            return bool(await self.client.set(PREFIX + "seeding", "1", nx=True, ex=hold_s))
        except (RedisError, OSError) as exc:
            raise CountersUnavailable(f"Redis at {self.describe()}: {exc}") from None

    async def seed(self, spent: Sequence[tuple[BudgetLine, int]], read_at: float) -> bool:
        """Start the counters from the ledger's spend (only if no replica did already).
        The new epoch carries when the ledger was read (gateway.admission.runtime)."""
        epoch = f"{secrets.token_hex(8)}@{read_at!r}"
        keys = [SEEDED, *(budget_key(line) for line, _ in spent)]
        args: list[Any] = [
            epoch,
            *(amount for _, amount in spent),
            *(line.ttl_s or 0 for line, _ in spent),
        ]
        return bool(await self._run("seed", self._seed, keys, args))

    async def close(self) -> None:
        await self._admits.wait()
        await self._settles.wait()
        await self.client.aclose()


def _texts(reply: Any) -> list[str]:
    return [item.decode() if isinstance(item, bytes) else str(item) for item in reply]


def _admit_call(ask: Ask) -> tuple[list[str], list[Any]]:
    cur = bucket(ask.now)
    keys = [SEEDED, LEASES, lease_key(ask.rid), *(budget_key(line) for line in ask.budgets)]
    for line in ask.rates:
        keys.extend(bucket_key(line, b) for b in range(cur - BUCKETS + 1, cur + 1))
    keys.extend(slot_key(line.scope) for line in ask.slots)
    args: list[Any] = [
        repr(ask.now),
        ask.rid,
        repr(ask.now + ask.lease_s),
        ask.input_pusd,
        ask.out_pusd,
        ask.max_out,
        min(ask.min_out, ask.max_out),
        ask.input_tokens,
        ask.out_factor,
        len(ask.budgets),
        len(ask.rates),
        len(ask.slots),
        BUCKET_S,
        BUCKETS,
        math.ceil(ask.lease_s) + 60,
        ask.count,
    ]
    for budget in ask.budgets:
        args.extend((budget.limit, budget.ttl_s or 0))
    for rate in ask.rates:
        args.extend((1 if rate.kind == "requests" else 0, rate.limit))
    args.extend(slot.limit for slot in ask.slots)
    return keys, args


def _outcome(ask: Ask, reply: list[str]) -> Outcome | CountersUnavailable:
    verdict = reply[0]
    if verdict == "unseeded":
        return CountersUnavailable(
            "Redis has no counters yet (restarted empty): rebuilding from the ledger"
        )
    if verdict == "ok":
        granted, cost, tokens = int(reply[1]), int(reply[2]), int(reply[3])
        rest = reply[4:]
        nb = len(ask.budgets)
        budgets = [(int(rest[2 * i]), int(rest[2 * i + 1])) for i in range(nb)]
        rates = [
            (int(rest[2 * nb + 2 * i]), float(rest[2 * nb + 2 * i + 1]))
            for i in range(len(ask.rates))
        ]
        return Outcome(
            True, granted_out=granted, cost=cost, tokens=tokens, budgets=budgets, rates=rates
        )
    index = int(reply[1])
    if verdict == "budget":
        rest = reply[2:]
        return Outcome(
            False,
            "budget",
            index,
            budgets=[(int(rest[2 * i]), int(rest[2 * i + 1])) for i in range(len(ask.budgets))],
        )
    return Outcome(False, verdict, index, float(reply[2]) if len(reply) > 2 else None)


def _settle_call(s: Settlement) -> tuple[list[str], list[Any]]:
    admitted, cur = bucket(s.admitted_at), bucket(s.now)
    keys = [SEEDED, LEASES, lease_key(s.rid), *(budget_key(line) for line in s.budgets)]
    for line in s.token_rates:
        keys.extend((bucket_key(line, admitted), bucket_key(line, cur)))
    keys.extend(slot_key(line.scope) for line in s.slots)
    args: list[Any] = [
        s.rid,
        s.actual_pusd,
        s.actual_tokens - s.tokens,
        len(s.budgets),
        len(s.token_rates),
        len(s.slots),
        BUCKET_S * (BUCKETS + 1),
        *(line.ttl_s or 0 for line in s.budgets),
        s.keep,
    ]
    return keys, args
