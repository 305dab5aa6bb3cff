"""A client that hangs up stops its upstream call.

Starlette cancels a streaming response when the client disconnects, but nothing
watches a request while the gateway waits for the upstream's answer (a whole unstreamed
completion, or the first bytes of a stream, retries included). `until_disconnect`
watches the connection during that wait and cancels it, so the upstream request is
dropped and its connection closed instead of running on for nobody.

`AccountedStream` makes sure a streamed call is accounted exactly once however it ends:
done, failed, or abandoned by the client before or while it was iterated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.hangup import SCOPE_KEY, Hangup

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


class _Watch:
    """The one disconnect watcher: it cancels the task that made it when the client goes.
    Used while waiting for the upstream and while streaming. Under the gateway's own
    server the connection tells it (gateway.hangup); elsewhere a task waits for
    `http.disconnect`."""

    __slots__ = ("_gone", "_hangup", "_task", "_watcher")

    def __init__(self, receive: Receive, hangup: Hangup | None = None) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._gone = False
        self._hangup = hangup
        self._watcher: asyncio.Task[None] | None = None
        if hangup is not None:
            hangup.on_lost(self._lost)
        else:
            self._watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    def _lost(self) -> None:
        self._gone = True
        self._task.cancel()

    async def _watch(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # a server that cannot tell: then nothing is watched
            return
        self._lost()

    def cancelled_us(self) -> bool:
        """After a CancelledError: whether it was this watcher's (the client left), and
        nobody else's too (then the cancellation is absorbed)."""
        return self._gone and self._task.uncancel() == 0

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        elif self._hangup is not None:
            self._hangup.clear()


def hangup_of(scope: Scope) -> Hangup | None:
    hangup = scope.get(SCOPE_KEY)
    return hangup if isinstance(hangup, Hangup) else None


async def until_disconnect(receive: Receive, work: Awaitable[T], hangup: Hangup | None = None) -> T:
    """Await `work`; if the client disconnects first, cancel it and raise ClientGone.

    The body has been read, so the only message left to receive is the disconnect. One
    watcher per request; it cancels this task rather than running `work` in another.
    """
    watch = _Watch(receive, hangup)
    try:
        return await work
    except asyncio.CancelledError:
        if watch.cancelled_us():
            raise ClientGone from None
        raise
    finally:
        watch.close()


class AccountedStream(StreamingResponse):
    """A streaming response that calls `on_end` once, when it is over for any reason."""

    def __init__(
        self, frames: AsyncIterator[bytes], headers: dict[str, str], on_end: Callable[[], None]
    ) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=headers)
        self._frames = frames
        self._on_end = on_end

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        """StreamingResponse's own loop, stopped when the client disconnects.

        Starlette does the same with an anyio task group (uvicorn announces ASGI 2.3, so
        a send to a gone client does not raise): a cancel scope and two new tasks per
        stream, on the way to the first token. One plain watcher task does the same.
        """
        watch = _Watch(receive, self._hangup)
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            if watch.cancelled_us():
                return  # the client left: nothing more to send
            raise
        finally:
            watch.close()

    _hangup: Hangup | None = None

    async def stream_response(self, send: Send) -> None:
        """Starlette's, except that the encoded headers are let go once they are sent,
        not kept for the whole stream (about 0.6 KB of a held one)."""
        headers, self.raw_headers = self.raw_headers, []
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        del headers
        async for chunk in self.body_iterator:
            if not isinstance(chunk, bytes | memoryview):
                chunk = chunk.encode(self.charset)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._hangup = hangup_of(scope)
        try:
            await self._stream_until_disconnect(receive, send)
        finally:
            try:
                # Left suspended when the client went away between frames: closing it runs
                # its cleanup now (upstream connection released, call accounted).
                aclose = getattr(self._frames, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                self._on_end()
