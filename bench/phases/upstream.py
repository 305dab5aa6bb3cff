"""upstream: the fake upstream alone (upstream on core 1, wrk on core 0), 32 connections."""

from __future__ import annotations

from config import LOAD_CORE, PROXY_CORE
from phases import Session


def measure(s: Session) -> None:
    r, d = s.runner, s.args.duration
    # The fake upstream alone on core 1, wrk on core 0: what one core of it can serve.
    r.start_upstream(LOAD_CORE)
    upstream_pids = [r.upstream.pid]
    s.say("upstream alone: 32 connections")
    s.report["upstream_alone"] = r.wrk(
        r.upstream_port, 32, d, cores=PROXY_CORE, watch={"upstream": upstream_pids}
    )
