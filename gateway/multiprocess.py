"""prometheus-client's multiprocess mode, for `gateway serve --workers N`.

Each worker process writes its metric values to files in `PROMETHEUS_MULTIPROC_DIR`;
`/metrics` on any worker reads all of them, so a scrape sees the sum over the workers
whichever one answers. prometheus-client picks its value store from that variable when it
is first imported, so the CLI prepares the folder before any worker (or this module's
callers) imports it; nothing here imports prometheus-client at module level for that reason.

Without the variable (a single process, the default) metrics stay plain in-process values.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

ENV = "PROMETHEUS_MULTIPROC_DIR"

_collector: CollectorRegistry | None = None
_LIVE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def folder() -> str | None:
    return os.environ.get(ENV) or None


def prepare(workers: int) -> Callable[[], None]:
    """Make the metrics folder ready before the workers start; return the cleanup to run
    when the server has stopped.

    A folder the operator set is created if needed and emptied of stale `*.db` files (a
    previous run's values would otherwise be summed into this run's). With N > 1 workers
    and none set, a fresh temporary folder is made and removed at the end.
    """
    given = folder()
    if given:
        os.makedirs(given, exist_ok=True)
        for path in glob.glob(os.path.join(given, "*.db")):
            os.remove(path)
        return lambda: None
    if workers <= 1:
        return lambda: None  # one process: the fast in-process default
    made = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[ENV] = made  # inherited by the worker processes uvicorn spawns

    def cleanup() -> None:
        # The folder is gone: a later server in this process must not look for it.
        if os.environ.get(ENV) == made:
            del os.environ[ENV]
        shutil.rmtree(made, ignore_errors=True)

    return cleanup


def collector_registry() -> CollectorRegistry | None:
    """The registry that aggregates every worker's files, or None in single-process mode."""
    global _collector
    if folder() is None:
        return None
    if _collector is None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        _collector = registry
    return _collector


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def reap_dead_workers() -> None:
    """Drop the live gauges (requests in flight) of worker processes that are gone.

    uvicorn restarts a worker that died without telling prometheus-client, so its last
    in-flight count would stay in the sum; each worker checks at start-up.
    """
    path = folder()
    if path is None:
        return
    from prometheus_client.multiprocess import mark_process_dead

    for name in os.listdir(path):
        match = _LIVE_FILE.match(name)
        if match and not _alive(int(match.group(1))):
            # Workers start together: another one may have removed it first.
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(int(match.group(1)), path)  # type: ignore[no-untyped-call]


def mark_exited() -> None:
    """This worker is stopping: its in-flight gauge leaves the sum."""
    path = folder()
    if path is None:
        return
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
