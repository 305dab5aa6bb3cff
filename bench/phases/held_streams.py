"""held_streams: --held N streamed calls held open at once (bench/held.py), one gateway worker.

The same load against the fake upstream alone first, then against a fresh gateway
(started for this phase, so its RSS before the load is a clean baseline). Reported:
how many succeeded, the gateway's peak RSS and RSS per held stream, the time a call
took over the upstream alone (p50 of whole-call times, gateway - direct), and a probe's
time to first token while the N are held against the same probe with none held.
`--held-rounds` repeats the gateway's load: RSS after each round shows it stays flat.
"""

from __future__ import annotations

import json
import subprocess
import sys

from config import BENCH, CHAT_PATH, LOAD_CORE, MASTER_KEY, RESULTS, STREAM_BODY
from phases import Session
from procs import memory_mb, pinned, stop

TARGETS = {"held": 8000, "kb_per_stream": 30.0, "probe_ttft_added_ms": 5.0}


def _client(s: Session, port: int, pid: int | None) -> dict:
    args = s.args
    held_body, probe_body = RESULTS / "body-held.json", RESULTS / "body-stream.json"
    held_body.write_text(json.dumps({**STREAM_BODY, "user": "held"}))
    probe_body.write_text(json.dumps(STREAM_BODY))
    argv = [
        sys.executable,
        str(BENCH / "held.py"),
        f"http://127.0.0.1:{port}{CHAT_PATH}",
        "--body",
        str(held_body),
        "--probe-body",
        str(probe_body),
        "--n",
        str(args.held),
        "--probes",
        str(args.held_probes),
        "--auth",
        f"Bearer {MASTER_KEY}",
    ]
    if pid is not None:
        argv += ["--pid", str(pid)]
    limit = args.held_gap_s + 180
    out = subprocess.run(pinned(LOAD_CORE, argv), capture_output=True, text=True, timeout=limit)
    if out.returncode != 0:
        raise RuntimeError(f"held-streams client failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(s: Session) -> None:
    args, r = s.args, s.runner
    s.say(f"held_streams: {args.held} streams held {args.held_gap_s:g} s, upstream alone")
    direct = _client(s, r.upstream_port, None)
    gateway, port, _ready = r.start_gateway(log="gateway-held.log")
    rounds = []
    try:
        for i in range(args.held_rounds):
            s.say(
                f"held_streams: {args.held} streams through one gateway worker (round {i + 1}/{args.held_rounds})"
            )
            rounds.append(_client(s, port, gateway.pid))
        end = memory_mb([gateway.pid])
    finally:
        stop(gateway)
    first = rounds[0]
    idle = first["probe_idle"].get("ttft_ms", {}).get("p50")
    held = first["probe_held"].get("ttft_ms", {}).get("p50")
    report = {
        "n": args.held,
        "held_gap_s": args.held_gap_s,
        "direct": direct,
        "rounds": rounds,
        "ok": first["ok"],
        "all_ok": all(x["ok"] == args.held for x in rounds),
        "peak_rss_mb": end["hwm_mb"],
        "rss_kb_per_held_stream": first.get("rss_kb_per_held_stream"),
        "rss_after_rounds_mb": [x["rss_mb"]["after"] for x in rounds],
        "added_p50_ms": round(first["total_ms"]["p50"] - direct["total_ms"]["p50"], 1)
        if first["total_ms"] and direct["total_ms"]
        else None,
        "probe_ttft_idle_p50_ms": idle,
        "probe_ttft_held_p50_ms": held,
        "probe_ttft_added_ms": round(held - idle, 3)
        if idle is not None and held is not None
        else None,
        "all_held_during_probes": first["held_at_probe_end"] == args.held,
    }
    kb = report["rss_kb_per_held_stream"]
    report["meets_targets"] = bool(
        args.held >= TARGETS["held"]
        and report["all_ok"]
        and kb is not None
        and kb <= TARGETS["kb_per_stream"]
        and report["probe_ttft_added_ms"] is not None
        and report["probe_ttft_added_ms"] <= TARGETS["probe_ttft_added_ms"]
    )
    s.report["held_streams"] = report
