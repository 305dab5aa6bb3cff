"""Operations that arrive while a round trip to the counters runs wait for the next one,
which takes them all: under load one transaction (SQL) or one pipeline (Redis) serves
every call waiting, in arrival order; a call alone goes at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from gateway.counters.base import CountersUnavailable

Op = TypeVar("Op")

MAX_BATCH = 256


class Combiner(Generic[Op]):
    def __init__(self, run: Callable[[list[Op]], Awaitable[list[Any]]], name: str) -> None:
        self._run = run
        self._name = name
        self._waiting: list[tuple[Op, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    def submit(self, op: Op) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((op, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain(), name=self._name)
        return future

    async def _drain(self) -> None:
        while self._waiting:
            taken, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                results = await self._run([op for op, _ in taken])
            except CountersUnavailable as exc:
                for _, future in taken:
                    if not future.done():
                        future.set_exception(CountersUnavailable(str(exc)))
            except Exception as exc:  # a bug: every caller sees it, the next batch runs
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), result in zip(taken, results, strict=True):
                    if not future.done():
                        if isinstance(result, CountersUnavailable):
                            future.set_exception(result)
                        else:
                            future.set_result(result)

    async def wait(self) -> None:
        """Until every operation submitted so far has its answer."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
