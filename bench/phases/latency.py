"""latency: 1 connection, unstreamed chat: p50/p99 per target; overhead = target - direct."""

from __future__ import annotations

from phases import Session
from procs import keep_awake, merge_rounds


def measure(s: Session) -> None:
    args, r, d, order = s.args, s.runner, s.args.duration, s.order
    # Interleaved rounds (direct, bare, gateway, direct, ...) so a drift of the machine
    # lands on every target alike; each target's numbers are the medians over rounds.
    rounds: dict[str, list[dict]] = {name: [] for name in order}
    with keep_awake(args.keep_awake):
        for i in range(args.rounds):
            for name in order:
                s.say(f"latency: {name}, 1 connection (round {i + 1}/{args.rounds})")
                port, watch = s.targets[name]
                rounds[name].append(r.wrk(port, 1, max(2, d * 1.2 / args.rounds), watch=watch))
    s.report["latency_1conn"] = {
        name: merge_rounds(rs, args.quiet_pct) for name, rs in rounds.items()
    }
    base = s.report["latency_1conn"]["direct"]
    for name in order[1:]:
        res = s.report["latency_1conn"][name]
        res["overhead_p50_ms"] = round(res["p50_ms"] - base["p50_ms"], 3)
        res["overhead_p99_ms"] = round(res["p99_ms"] - base["p99_ms"], 3)
