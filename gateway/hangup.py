"""How the server tells the app that a client's connection is gone, without a task.

Starlette (and the gateway before this) learn of a hang-up by keeping a task waiting on
`receive()` for `http.disconnect`: one more task per call, with its coroutine, future
and weak reference, created on every request and alive for a whole held stream.
gateway.server's protocol knows first (asyncio calls its `connection_lost`), so it puts
one `Hangup` in each request's scope under `SCOPE_KEY`, and the app hands it the one
callback to run then (gateway.proxy.disconnect). Under any other server the key is
absent and the app keeps its watcher task.
"""

from __future__ import annotations

from collections.abc import Callable

SCOPE_KEY = "gateway.hangup"


class Hangup:
    __slots__ = ("_callback", "lost")

    def __init__(self) -> None:
        self.lost = False
        self._callback: Callable[[], None] | None = None

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the connection is lost; at once if it already is."""
        if self.lost:
            callback()
        else:
            self._callback = callback

    def clear(self) -> None:
        self._callback = None

    def fire(self) -> None:
        """The connection is gone (the server's connection_lost)."""
        self.lost = True
        callback, self._callback = self._callback, None
        if callback is not None:
            callback()
