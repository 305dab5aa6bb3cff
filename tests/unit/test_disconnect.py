"""until_disconnect with the server's hang-up word (gateway.hangup): no watcher task."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from gateway.hangup import Hangup
from gateway.proxy.disconnect import ClientGone, until_disconnect


async def _never() -> Message:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


def test_a_hangup_cancels_the_wait_without_a_watcher_task() -> None:
    async def main() -> None:
        hangup = Hangup()
        work = asyncio.get_running_loop().create_future()
        seen: list[int] = []

        async def call() -> None:
            seen.append(len(asyncio.all_tasks()))
            await until_disconnect(_never, work, hangup)

        task = asyncio.create_task(call())
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == seen[0]  # main and call: no third task
        hangup.fire()
        with pytest.raises(ClientGone):
            await task
        assert work.cancelled()

    asyncio.run(main())


def test_a_connection_already_lost_cancels_at_once() -> None:
    async def main() -> None:
        hangup = Hangup()
        hangup.fire()
        with pytest.raises(ClientGone):
            await until_disconnect(_never, asyncio.sleep(3600), hangup)

    asyncio.run(main())


def test_without_a_hangup_a_watcher_task_reads_the_disconnect() -> None:
    async def main() -> None:
        async def receive() -> Message:
            await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}

        with pytest.raises(ClientGone):
            await until_disconnect(receive, asyncio.sleep(3600))

    asyncio.run(main())


def test_a_finished_wait_leaves_no_callback_behind() -> None:
    async def main() -> None:
        hangup = Hangup()

        async def answer() -> str:
            return "ok"

        assert await until_disconnect(_never, answer(), hangup) == "ok"
        hangup.fire()  # the connection closes later, after the answer: nothing to cancel
        await asyncio.sleep(0)

    asyncio.run(main())
