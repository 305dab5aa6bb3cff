"""The gateway's load benchmark: gateway vs a bare FastAPI+httpx proxy vs the upstream directly.

    python bench/run.py                 # everything, under 3 minutes
    python bench/run.py --candidate /tmp/copy   # also a gateway source tree with a change: A/B
    python bench/run.py --quick         # one short round per phase, about 75 s
    python bench/run.py --profile       # also a py-spy flame graph of the gateway under load
    python bench/run.py --phases latency,throughput

Layout on a 2-core machine (`taskset`): the proxy under test (the gateway, or the bare
proxy) alone on core 0; the fake upstream, wrk and the TTFT client on core 1. The fake
upstream is measured alone first (on core 1, wrk on core 0) to show it is not the
bottleneck, and each load phase records how busy the proxy and the upstream were.

Phases, each bounded in time:
  upstream     the fake upstream alone: req/s at 32 connections
  startup      `gateway serve` from process start to `/readyz` 200 (3 cold starts)
  latency      1 connection: p50/p99 for direct, bare and gateway; overhead = x - direct
  throughput   req/s at 32 and 128 connections, unstreamed chat, direct/bare/gateway
  ttft         streamed chat, time to first token, direct/bare/gateway (bench/ttft.py)
  soak         the gateway's RSS sampled until it has served --soak-requests in all
  held_streams --held streamed calls held open at once, upstream alone then one gateway
               worker: success, RSS per stream, added time, a probe's TTFT meanwhile
               (bench/held.py; only when named in --phases)
  workers      `--workers 2`, every process on both cores: req/s at 32 and 128
  governance   a key with a budget and limits (SQLite, then Valkey counters) vs no keys, 32 connections

Everything is on loopback. wrk (Debian's) is installed with apt-get when missing.
Prints a table and writes bench/results/latest.json (and a timestamped copy).

This file is the runner: the options, the processes every phase measures, the order.
Each phase is a module of bench/phases/; bench/servers.py starts the processes under test
and drives the load, bench/procs.py measures processes, bench/report.py prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from config import CHAT_BODY, DEFAULT_PHASES, LOAD_CORE, MODEL, PHASES, RESULTS
from phases import (
    Session,
    governance,
    held_streams,
    latency,
    soak,
    startup,
    throughput,
    ttft,
    upstream,
    workers,
)
from phases.profiling import profile
from procs import _started, memory_mb, stop
from report import check_targets, table
from servers import Runner, ensure_wrk, environment, metrics_totals


def _start_targets(s: Session) -> dict:
    """The gateway, the bare proxy and any candidates, warmed up; returns the candidates."""
    args, r, report = s.args, s.runner, s.report
    gateway, gw_port, ready = r.start_gateway()
    s.gateway, s.gw_port, s.gw_pids = gateway, gw_port, [gateway.pid]
    report.setdefault("startup", {})["main_process_ready_s"] = round(ready, 3)
    report["rss_after_start"] = memory_mb(s.gw_pids)
    bare, bare_port = r.start_bare() if not args.no_bare else (None, None)
    bare_pids = [bare.pid] if bare else []

    targets = {
        "direct": (r.upstream_port, {"upstream": s.upstream_pids}),
        "gateway": (gw_port, {"proxy": s.gw_pids, "upstream": s.upstream_pids}),
    }
    if bare:
        targets["bare"] = (bare_port, {"proxy": bare_pids, "upstream": s.upstream_pids})
    candidates = {}
    for source in args.candidate:
        # Another gateway source tree (a scratch copy with a proposed change), measured in
        # the same run, interleaved with the others: A/B on equal terms.
        path = Path(source).resolve()
        name = path.name
        proc, port, ready = r.start_gateway(source=path, log=f"candidate-{name}.log")
        candidates[name] = proc
        targets[name] = (port, {"proxy": [proc.pid], "upstream": s.upstream_pids})
        report.setdefault("candidates", {})[name] = {
            "source": str(path),
            "ready_s": round(ready, 3),
            "rss_after_start": memory_mb([proc.pid]),
        }
    s.targets = targets
    s.order = [t for t in ("direct", "bare", "gateway", *candidates) if t in targets]
    report["targets_measured"] = s.order

    s.say("warm-up: 1 s at 32 connections on each target")
    for name in s.order:
        r.wrk(targets[name][0], 32, 1)
        r.wrk(targets[name][0], 128, 1)
    return {"bare": bare, "candidates": candidates}


def run(args: argparse.Namespace) -> dict:
    phases = set(args.phases)
    report: dict = {
        "environment": environment(),
        "settings": {
            "duration_s": args.duration,
            "soak_requests": args.soak_requests,
            "stream_gap_ms": args.stream_gap_ms,
            "model": MODEL,
            "request": CHAT_BODY,
        },
    }
    r = Runner(args)
    t_start = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {text}", flush=True)

    s = Session(args, r, report, say, t_start)
    if "upstream" in phases:
        upstream.measure(s)
    else:
        r.start_upstream(LOAD_CORE)
    s.upstream_pids = [r.upstream.pid]
    if "startup" in phases:
        startup.measure(s)

    started = _start_targets(s)
    for name, phase in (("latency", latency), ("throughput", throughput), ("ttft", ttft)):
        if name in phases:
            phase.measure(s)

    if started["bare"]:
        stop(started["bare"])
    for name, proc in started["candidates"].items():
        report["candidates"][name]["rss_end"] = memory_mb([proc.pid])
        report["candidates"][name]["metrics"] = metrics_totals(s.targets[name][0])
        stop(proc)

    if "soak" in phases:
        soak.measure(s)
    report["rss_end"] = memory_mb(s.gw_pids)
    report["metrics"] = metrics_totals(s.gw_port)
    if args.profile:
        report["profile"] = profile(r, s.gateway.pid, s.gw_port, say)
    stop(s.gateway)

    if "held_streams" in phases:
        held_streams.measure(s)
    if "workers" in phases:
        workers.measure(s)
    if "governance" in phases:
        governance.measure(s)

    stop(r.upstream)
    report["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    report["waited_for_quiet_s"] = round(r.foreign.waited, 1)
    report["targets"] = check_targets(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--phases", default=",".join(DEFAULT_PHASES), help=f"comma list of: {', '.join(PHASES)}"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    parser.add_argument(
        "--quick", action="store_true", help="one round of 2 s per phase, a 30k-request soak"
    )
    parser.add_argument("--soak-requests", type=int, default=100_000)
    parser.add_argument("--soak-slice-s", type=float, default=8.0)
    parser.add_argument("--soak-limit-s", type=float, default=75.0)
    parser.add_argument(
        "--budget-s",
        type=float,
        default=178.0,
        help="the soak stops early so the whole run ends within about this",
    )
    parser.add_argument(
        "--stream-gap-ms",
        type=float,
        default=5.0,
        help="the fake upstream's pause between the first streamed chunk and the rest",
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-proxy floor")
    parser.add_argument(
        "--quiet-pct",
        type=float,
        default=15.0,
        help="before a measurement, wait while other processes use more than this %% of a core",
    )
    parser.add_argument(
        "--quiet-wait-s",
        type=float,
        default=10.0,
        help="the most the whole run waits for a quiet machine",
    )
    parser.add_argument(
        "--candidate",
        metavar="DIR",
        action="append",
        default=[],
        help="also measure the gateway in this source tree (a copy with a proposed "
        "change), named by the folder's name; may be repeated",
    )
    parser.add_argument(
        "--conns", default="32,128", help="connection counts of the throughput phase"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds of the 1-connection phases (latency, ttft)",
    )
    parser.add_argument(
        "--no-keep-awake",
        dest="keep_awake",
        action="store_false",
        help="no SCHED_IDLE busy loops on the cores during the 1-connection phases",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the gateway under load (pip install py-spy)"
    )
    parser.add_argument("--profile-s", type=int, default=8)
    parser.add_argument(
        "--speedscope", action="store_true", help="with --profile, also a speedscope JSON"
    )
    parser.add_argument("--held", type=int, default=8000, help="held_streams: streams held at once")
    parser.add_argument(
        "--held-gap-s",
        type=float,
        default=20.0,
        help="held_streams: how long the upstream holds each stream after its first chunk",
    )
    parser.add_argument(
        "--held-probes", type=int, default=50, help="held_streams: probe calls, idle and held"
    )
    parser.add_argument(
        "--held-rounds", type=int, default=2, help="held_streams: rounds through the gateway"
    )
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    args = parser.parse_args()
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    args.conns = [int(c) for c in args.conns.split(",") if c.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.quick:
        args.duration, args.soak_requests, args.soak_limit_s, args.rounds = 2.0, 30_000, 30.0, 1
    if (os.cpu_count() or 1) < 2:
        parser.error("the benchmark pins the proxy and the load to two different cores: it needs 2")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for log in [*RESULTS.glob("*.log")]:
        log.unlink()
    ensure_wrk()
    try:
        report = run(args)
    finally:
        for proc in list(_started):
            stop(proc)
    text = table(report)
    print("\n" + text)
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=1) + "\n")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"run-{stamp}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {out} (elapsed {report['elapsed_s']} s)")


if __name__ == "__main__":
    main()
