"""startup: `gateway serve` from process start to the first `GET /readyz` 200, 3 cold starts."""

from __future__ import annotations

import statistics

from phases import Session
from procs import stop


def measure(s: Session) -> None:
    s.say("startup: 3 cold starts of `gateway serve`")
    times = []
    for _ in range(3):
        proc, _port, ready = s.runner.start_gateway()
        times.append(ready)
        stop(proc)
    s.report["startup"] = {
        "ready_s": [round(t, 3) for t in times],
        "median_s": round(statistics.median(times), 3),
    }
