"""Virtual keys in a running gateway: the store, the key cache, the ledger writer, and
the task that keeps them current.

Nothing here runs per request. Without a database (`Settings.database_url` None, as
in an app built in-process without one) nothing starts at all. With the default URL
(`sqlite:///./gateway.db`) and no such file, the gateway opens nothing and creates
nothing: it checks every POLL_S whether the file has appeared (the `gateway keys` or
`teams` commands create it), and opens it then. Any other URL is opened, migrated and
read before the first request; failing that, the gateway does not start.

Virtual keys are in force once the database holds any key or team: then the cache is
the app's KeyResolver and the ledger and per-key metric sinks join `state.sinks`.
Before that the request path is exactly the gateway without keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING

from gateway import tokens
from gateway.admission.runtime import Admission
from gateway.keys import metrics as key_metrics
from gateway.keys.cache import POLL_S, KeyCache
from gateway.state import GatewayState
from gateway.store import DEFAULT_URL, StoreError
from gateway.store.plain import DEFAULT_PATH

if TYPE_CHECKING:
    from gateway.keys.ledger import LedgerWriter
    from gateway.store import Store

log = logging.getLogger("gateway.keys")


class Governance:
    def __init__(self, url: str, store: Store | None) -> None:
        self.url = url
        self.store = store
        self.cache: KeyCache | None = None
        self.writer: LedgerWriter | None = None
        self._state: GatewayState | None = None
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._opening = threading.Lock()
        self.admission: Admission | None = None  # budgets and rate limits (gateway.admission)
        self._warming: asyncio.Task[None] | None = None
        if store is not None:
            self._attach(store)

    @classmethod
    def open(cls, url: str) -> Governance:
        """Open the database now (raises StoreError), or wait for the default file."""
        if url == DEFAULT_URL and not os.path.exists(DEFAULT_PATH):
            return cls(url, None)  # nothing opened, nothing of SQLAlchemy imported
        from gateway.store import Store

        governance = cls(url, Store.open(url))
        assert governance.cache is not None
        governance.cache.refresh()
        return governance

    @property
    def active(self) -> bool:
        return self.cache is not None and self.cache.active

    def _attach(self, store: Store) -> None:
        from gateway.keys.ledger import LedgerWriter

        self.cache = KeyCache(store)
        self.writer = LedgerWriter(store)
        self.store = store

    def ensure_store(self) -> Store:
        """The store, opened (and the file created) now if it was not yet: the admin API
        creating the first team or key. Blocking; called from a worker thread."""
        with self._opening:
            if self.store is None:
                from gateway.store import Store

                self._attach(Store.open(self.url))
            assert self.store is not None
            return self.store

    def _apply(self) -> None:
        """Put the cache and sinks in force, or take them out, after a refresh."""
        state, cache, writer = self._state, self.cache, self.writer
        if state is None or cache is None or writer is None:
            return
        writer.enabled = cache.active
        state.resolver = cache if cache.active else None
        if cache.active and writer not in state.sinks:
            state.sinks.extend([writer, key_metrics.record])

    async def _admission(self) -> None:
        """Budgets and rate limits come into force with the keys (and leave with them)."""
        state = self._state
        if state is None or self.store is None or self.cache is None:
            return
        if self.admission is None and self.cache.active:
            from gateway.admission.setup import build as build_admission

            self.admission = build_admission(state.settings, self.store, self.cache, self.writer)
            await self.admission.start()
        if self._warming is None and any(
            getattr(p.limits, "quota", None) is not None for p in self.cache.principals()
        ):
            # Limits reserve for the input by the tokenizer's count: load its vocabulary
            # (1.5 s, holding the GIL: the loop waits wherever it runs) now, before serving
            # when limits exist at start-up (`start` awaits it), not in the first limited
            # call. Only then: keys without limits never need it.
            self._warming = asyncio.create_task(asyncio.to_thread(tokens.warm_up))
        state.admission = self.admission if self.cache.active else None

    async def start(self, state: GatewayState) -> None:
        self._state = state
        self._apply()
        await self._admission()
        if self._warming is not None:
            await self._warming
        self._task = asyncio.create_task(self._poll(), name="gateway-keys-poll")
        if self.writer is not None:
            self._flusher = asyncio.create_task(self.writer.run(), name="gateway-ledger-flush")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self._poll_once()
            except Exception:  # the loop must outlive one bad poll; the next may succeed
                log.exception("refreshing the virtual keys failed")

    async def _poll_once(self) -> None:
        if self.store is None:
            if not os.path.exists(DEFAULT_PATH):  # only the default URL waits for its file
                return
            try:
                await asyncio.to_thread(self.ensure_store)
            except StoreError as exc:
                log.warning("%s appeared but cannot be opened yet: %s", self.url, exc)
                return
        if self._flusher is None and self.writer is not None:
            self._flusher = asyncio.create_task(self.writer.run(), name="gateway-ledger-flush")
        assert self.cache is not None
        if await asyncio.to_thread(self.cache.refresh):
            self._apply()
            await self._admission()

    async def stop(self) -> None:
        for task in (self._task, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.admission is not None:
            await self.admission.stop()  # settlements still running finish first
        if self.writer is not None:
            await self.writer.close()
        if self.store is not None:
            self.store.close()
