"""What one worker process can hold at once, and the answer when a local limit is reached.

A held stream costs the process two file descriptors: the client's connection and the
upstream's. So the descriptor limit, not a pool size, is what bounds a worker, and the
defaults follow it: at start the soft RLIMIT_NOFILE is raised to the hard limit, client
connections default to what the descriptors left after `RESERVE` allow two at a time,
and upstream pools have no limit of their own unless the registry sets `max_connections`
(docs/scale.md).

A local limit reached is the gateway's condition, not the upstream's: a 503 with code
`gateway_overloaded`, a `retry-after`, counted in `gateway_local_limit_total{limit}` and
never in `gateway_upstream_errors_total`, and it never counts against a breaker.
"""

from __future__ import annotations

import logging
import resource
from typing import Literal

from gateway.errors import GatewayError

log = logging.getLogger("gateway")

# Descriptors kept for everything that is not a stream: the listening socket, logs, the
# registry watcher's inotify, a database pool, metric files, imports.
RESERVE = 256
# When the hard limit is unlimited the soft one is raised to this (Linux's default nr_open).
UNLIMITED_TARGET = 1_048_576
RETRY_AFTER_S = 1

Limit = Literal["provider_pool", "deployment_pool", "client_connections", "descriptors"]


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit in force after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:  # e.g. above fs.nr_open: keep what there is
        log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
        return soft
    return target


def descriptor_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft


def stream_capacity(descriptors: int | None = None) -> int:
    """How many streams one process can hold with `descriptors` (default: its soft limit)."""
    limit = descriptor_limit() if descriptors is None else descriptors
    return max(1, (limit - RESERVE) // 2)


def log_capacity(descriptors: int, workers: int) -> None:
    log.info(
        "open-file limit %d: up to %d held streams per worker (%d in all with %d worker%s)",
        descriptors,
        stream_capacity(descriptors),
        workers * stream_capacity(descriptors),
        workers,
        "" if workers == 1 else "s",
    )


def overloaded(limit: Limit, what: str) -> GatewayError:
    """The 503 for a local limit reached; `what` names it for the client."""
    from gateway import metrics  # metrics imports the registry; this module stays light

    metrics.local_limit_total.labels(limit).inc()
    return GatewayError(
        f"The gateway is at its own limit ({what}); the upstream was not called. "
        f"Try again in {RETRY_AFTER_S} s.",
        status=503,
        code="gateway_overloaded",
        reason="gateway_overloaded",
        headers={"retry-after": str(RETRY_AFTER_S)},
        upstream=False,
    )
