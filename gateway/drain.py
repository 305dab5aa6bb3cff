"""What SIGTERM does, in three steps (docs/hardening.md):

1. for `drain_s` (GATEWAY_DRAIN_S, default 5) the gateway keeps serving but `/readyz`
   answers 503 `draining`, so a load balancer that polls it stops sending new requests
   before the port closes, instead of learning of the stop from refused connections;
2. then uvicorn's own graceful stop: no new connections, in-flight calls finish;
3. at `grace_s` (GATEWAY_GRACE_S) after that, every stream still running ends with the
   API's error frame (the SDKs raise on it), never cut mid-chunk without one.

A second SIGTERM skips what is left of the drain. SIGINT (Ctrl-C) is uvicorn's own: no
drain. The handler goes in only in the main thread of a server process (uvicorn
installs its own there first); a server run in a thread (the tests) has none.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("gateway")

GRACE_OVER = "gateway: the shutdown grace period is over"


class Drain:
    def __init__(self) -> None:
        self.draining = False  # SIGTERM came: /readyz says so
        self.grace_over = False  # streams still running are to end now
        self.streams: set[asyncio.Task[Any]] = set()  # the tasks serving a stream now

    def install(self, drain_s: float, grace_s: float) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return  # nobody would stop the server after the drain: leave SIGTERM as it is
        loop = asyncio.get_running_loop()
        stopper: Callable[[int, FrameType | None], Any] = previous

        def stop() -> None:
            loop.call_later(grace_s, self.cut_streams)
            stopper(signal.SIGTERM, None)  # uvicorn: stop accepting, let in-flight calls finish

        pending: list[asyncio.TimerHandle] = []

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.draining:  # a second SIGTERM: no more waiting
                for handle in pending:
                    handle.cancel()
                loop.call_soon_threadsafe(stop)
                return
            self.draining = True
            loop.call_soon_threadsafe(lambda: pending.append(loop.call_later(drain_s, stop)))

        signal.signal(signal.SIGTERM, on_sigterm)
        log.debug("SIGTERM drains for %s s, then grants %s s of grace", drain_s, grace_s)

    def cut_streams(self) -> None:
        self.grace_over = True
        if self.streams:
            log.warning(
                "grace period over: ending %d stream(s) with an error frame", len(self.streams)
            )
        for task in list(self.streams):
            task.cancel(GRACE_OVER)


DRAIN = Drain()  # one per process, like the signal it answers
