"""gateway.server.LazyEvent: an asyncio.Event that makes its deque of waiters on first wait."""

from __future__ import annotations

import asyncio
import collections

from gateway.server import LazyEvent


def test_set_before_any_wait_makes_no_deque() -> None:
    event = LazyEvent()
    assert not event.is_set()
    event.set()
    assert event.is_set()
    assert asyncio.run(event.wait()) is True  # set: no waiting, so no deque either
    assert not isinstance(event._waiters, collections.deque)
    event.clear()
    assert not event.is_set()


def test_waiters_wake_on_set_and_block_again_after_clear() -> None:
    async def run() -> None:
        event = LazyEvent()
        waiter = asyncio.create_task(event.wait())
        await asyncio.sleep(0)
        assert not waiter.done()  # blocks until set
        event.set()
        assert await asyncio.wait_for(waiter, 1) is True
        assert await asyncio.wait_for(event.wait(), 1) is True  # set: at once
        event.clear()
        again = asyncio.create_task(event.wait())
        await asyncio.sleep(0.01)
        assert not again.done()
        event.set()
        assert await asyncio.wait_for(again, 1) is True
        assert not event._waiters  # a woken waiter takes itself off

    asyncio.run(run())
