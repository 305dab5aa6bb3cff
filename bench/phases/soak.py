"""soak: the gateway at 32 connections until it has served --soak-requests in all; VmRSS and
VmHWM sampled between slices, bounded by --soak-limit-s and the run's --budget-s."""

from __future__ import annotations

import time

from phases import Session
from procs import memory_mb
from servers import metrics_totals


def measure(s: Session) -> None:
    args, r, gw_port, gw_pids = s.args, s.runner, s.gw_port, s.gw_pids
    samples = []
    served = metrics_totals(gw_port)["requests"]
    samples.append({"requests": int(served), **memory_mb(gw_pids)})
    s.say(f"soak: gateway at 32 connections until it has served {args.soak_requests} requests")
    # Bounded by its own limit and by the run's budget (the workers phase still follows).
    deadline = min(time.perf_counter() + args.soak_limit_s, s.t_start + args.budget_s - 22)
    rate = s.report.get("throughput", {}).get("c32", {}).get("gateway", {}).get("rps", 1000.0)
    while served < args.soak_requests and time.perf_counter() < deadline:
        # Slices of at most --soak-slice-s, the last one just long enough to reach the target.
        left = (args.soak_requests - served) / max(rate, 1.0) + 0.5
        slice_s = max(1.0, min(args.soak_slice_s, left, deadline - time.perf_counter()))
        rate = r.wrk(gw_port, 32, slice_s)["rps"]
        served = metrics_totals(gw_port)["requests"]
        samples.append({"requests": int(served), **memory_mb(gw_pids)})
    half = next((x for x in samples if x["requests"] >= served / 2), samples[0])
    growth = round(samples[-1]["rss_mb"] - half["rss_mb"], 1)
    s.report["soak"] = {
        "samples": samples,
        "requests_served": int(served),
        "target_requests": args.soak_requests,
        "rss_growth_second_half_mb": growth,
        "flat": growth <= max(2.0, 0.02 * half["rss_mb"]),
    }
