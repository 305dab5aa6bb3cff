"""The ledger sink: every finished call of a key (or of the master key) becomes one
ledger row, written in batches off the hot path.

On the hot path a record is only appended to a bounded in-memory queue. A background
task writes the queue every FLUSH_S (in a worker thread), and once more at shutdown.
While the database is unreachable rows stay queued, up to BOUND per process; past the
bound new rows are dropped, counted in `gateway_ledger_dropped_rows_total` and logged
(the Prometheus counters still count those calls). So a crash (not a graceful stop,
which flushes) loses at most the rows queued since the last flush: normally the calls
that finished in the last FLUSH_S, and never more than BOUND rows per worker process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from prometheus_client import Counter, Gauge

from gateway.accounting import Usage
from gateway.metrics import IN_PROCESS, REGISTRY, FastValue
from gateway.store import Store, StoreError
from gateway.store.ledger import Format, format_of, insert_values, to_pusd

if TYPE_CHECKING:
    from gateway.accounting import CallRecord

log = logging.getLogger("gateway.keys")

FLUSH_S = 0.5
BOUND = 10_000
BATCH = 1_000

dropped_rows_total = Counter(
    "gateway_ledger_dropped_rows_total",
    "Ledger rows dropped because the database was unreachable and the in-memory queue was full.",
    registry=REGISTRY,
)
queued_rows = Gauge(
    "gateway_ledger_queued_rows",
    "Ledger rows waiting in memory to be written.",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
# In one process the gauge is the live writers' queue lengths, read at each scrape: no
# locked increment per call. In multiprocess mode another worker may answer the scrape,
# so the value goes to the library's files: moved once per call, and back per flush.
_writers: WeakSet[LedgerWriter] = WeakSet()
if IN_PROCESS:
    queued_rows.set_function(lambda: sum(len(writer._queue) for writer in list(_writers)))
_queued = None if IN_PROCESS else FastValue(queued_rows)


def values_from(record: CallRecord, form: Format) -> tuple[Any, ...]:
    """A call as one ledger tuple, in gateway.store.ledger.FIELDS order, in the store's
    Format. Built directly: it runs for every call a key makes."""
    principal, usage, ttft, flag = record.principal, record.usage, record.ttft_s, form.flag
    if usage is None:
        usage = _NO_USAGE
    return (  # one BUILD_TUPLE: a starred part would build a list and copy it
        form.time(record.time),
        record.request_id[:128],
        principal.key_id,
        principal.team_id,
        record.route,
        record.model,
        record.answered_by,
        record.provider,
        record.status,
        usage.input,
        usage.cached_input,
        usage.output,
        usage.reasoning,
        to_pusd(record.cost),
        record.duration_s * 1000,
        ttft * 1000 if ttft is not None else None,
        flag(record.streamed),
        flag(record.disconnected),
        flag(record.estimated),
        record.error_reason,
    )


_NO_USAGE = Usage()  # no usage: no tokens


class LedgerWriter:
    """A sink (gateway.state.GatewayState.sinks) plus the task that drains it."""

    def __init__(self, store: Store, bound: int = BOUND, flush_s: float = FLUSH_S) -> None:
        self.store = store
        self.bound = bound
        self.flush_s = flush_s
        self.enabled = False  # set while virtual keys are in force (gateway.keys.runtime)
        self._queue: deque[CallRecord] = deque()
        self._down = False
        self._dropped_since_log = 0
        _writers.add(self)

    def __call__(self, record: CallRecord) -> None:
        if not self.enabled or record.principal.kind not in ("key", "master"):
            return
        if len(self._queue) >= self.bound:
            dropped_rows_total.inc()
            self._dropped_since_log += 1
            return
        self._queue.append(record)
        if _queued is not None:
            _queued.inc()

    def pending(self) -> int:
        return len(self._queue)

    def flush(self) -> int:
        """Write what is queued now, in batches (blocking: call it from a thread).
        Returns the rows written; on a database error the rows go back to the queue.

        Rows queued while it writes wait for the next flush: chasing them would write
        a transaction of a few rows after every batch, each costing as much as a
        hundred rows do (the transaction, not the rows, is what costs)."""
        written = 0
        form = format_of(self.store)
        left = len(self._queue)
        while left and self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH, left, len(self._queue)))]
            left -= len(batch)
            try:
                insert_values(self.store, [values_from(record, form) for record in batch])
            except StoreError as exc:
                self._queue.extendleft(reversed(batch))  # oldest first again, ahead of newer rows
                if not self._down:
                    self._down = True
                    log.error(
                        "cannot write the ledger to %s (%s): keeping up to %d rows in memory",
                        self.store.describe(),
                        exc,
                        self.bound,
                    )
                break
            if _queued is not None:
                queued_rows.dec(len(batch))
            written += len(batch)
        else:
            if self._down:
                self._down = False
                log.warning("ledger writes to %s resumed", self.store.describe())
        if self._dropped_since_log:
            log.error(
                "the ledger queue is full (%d rows): dropped %d rows",
                self.bound,
                self._dropped_since_log,
            )
            self._dropped_since_log = 0
        return written

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            if self._queue or self._dropped_since_log:
                await asyncio.to_thread(self.flush)

    async def close(self) -> None:
        """The last flush, at shutdown: a graceful stop loses nothing the database takes
        (calls still finishing meanwhile included: again while a flush makes progress)."""
        while await asyncio.to_thread(self.flush) and self._queue:
            pass
        if self._queue:
            log.error(
                "shutting down with %d ledger rows the database did not take: they are lost",
                len(self._queue),
            )
