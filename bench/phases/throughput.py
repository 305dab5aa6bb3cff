"""throughput: req/s at 32 and 128 connections (--conns), unstreamed chat, per target."""

from __future__ import annotations

from phases import Session
from procs import merge_rounds


def measure(s: Session) -> None:
    args, r, d, order = s.args, s.runner, s.args.duration, s.order
    s.report["throughput"] = {}
    for conns in args.conns:
        rounds: dict[str, list[dict]] = {name: [] for name in order}
        for i in range(args.rounds):
            for name in order:
                s.say(f"throughput: {name}, {conns} connections (round {i + 1}/{args.rounds})")
                port, watch = s.targets[name]
                rounds[name].append(r.wrk(port, conns, max(2, d * 1.2 / args.rounds), watch=watch))
        s.report["throughput"][f"c{conns}"] = {
            name: merge_rounds(rs, args.quiet_pct) for name, rs in rounds.items()
        }
