"""workers: `--workers 2` with every process on both cores, then 1 worker on the same terms."""

from __future__ import annotations

import time

from phases import Session
from procs import memory_mb, proc_tree, stop


def measure(s: Session) -> None:
    r, d = s.runner, s.args.duration
    s.say("workers: `--workers 2` on cores 0,1 (upstream and wrk too)")
    stop(r.upstream)
    r.start_upstream("0,1")
    proc, port, ready = r.start_gateway("0,1", workers=2)
    time.sleep(0.5)  # both workers listening
    tree = proc_tree(proc.pid)
    watch = {"gateway (all workers)": tree, "upstream": [r.upstream.pid]}
    r.wrk(port, 32, 1, cores="0,1")
    res = {"ready_s": round(ready, 3), "processes": len(tree)}
    for conns in (32, 128):
        res[f"c{conns}"] = r.wrk(port, conns, max(3, d * 0.6), cores="0,1", watch=watch)
    res["rss"] = memory_mb(proc_tree(proc.pid))
    stop(proc)
    # One worker, unpinned the same way, so the two are compared on equal terms.
    proc, port, _ = r.start_gateway("0,1", workers=1)
    r.wrk(port, 32, 1, cores="0,1")
    res["one_worker_unpinned"] = {
        f"c{c}": r.wrk(
            port,
            c,
            max(3, d * 0.6),
            cores="0,1",
            watch={"gateway": [proc.pid], "upstream": [r.upstream.pid]},
        )
        for c in (32, 128)
    }
    stop(proc)
    s.report["workers_2"] = res
