"""ttft: streamed chat, 1 connection: time to the first content chunk (bench/ttft.py), per target."""

from __future__ import annotations

import statistics

from phases import Session
from procs import keep_awake


def measure(s: Session) -> None:
    args, r, d, order = s.args, s.runner, s.args.duration, s.order
    rounds: dict[str, list[dict]] = {name: [] for name in order}
    with keep_awake(args.keep_awake):
        for i in range(args.rounds):
            for name in order:
                s.say(f"ttft: {name}, streamed chat, 1 connection (round {i + 1}/{args.rounds})")
                rounds[name].append(r.ttft(s.targets[name][0], max(d * 0.9 / args.rounds, 1)))
    report = s.report["ttft"] = {}
    for name, rs in rounds.items():
        report[name] = {
            "requests": sum(x["requests"] for x in rs),
            "errors": sum(x["errors"] for x in rs),
            "ttft_ms": {
                k: round(statistics.median(x["ttft_ms"][k] for x in rs), 3)
                for k in ("mean", "p50", "p90", "p99")
            },
            "total_ms": {
                k: round(statistics.median(x["total_ms"][k] for x in rs), 3) for k in ("p50", "p99")
            },
            "rounds_p50_ms": [x["ttft_ms"]["p50"] for x in rs],
        }
    base = report["direct"]["ttft_ms"]
    for name in order[1:]:
        res = report[name]
        res["overhead_p50_ms"] = round(res["ttft_ms"]["p50"] - base["p50"], 3)
        res["overhead_mean_ms"] = round(res["ttft_ms"]["mean"] - base["mean"], 3)
